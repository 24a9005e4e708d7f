"""Thin views: parse the request, call the lookup service, pick the page or the partial."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from accounts.sessions import auth_method, signed_in_with_company_account
from customers import access, cross_site, lookups
from customers.cards import contact_files
from customers.cards.presentation import CustomerCard, customer_card, day_chart
from customers.forms import HistoryFilterForm, ProjectSearchForm, ReasonForm, SiteVisitForm
from customers.history import queries as history
from customers.models import HistoryReview, LookupEvent, Outcome
from customers.run_sheets import service as run_sheets
from solarproof_portal.middleware import client_ip

logger = logging.getLogger(__name__)

RECENT_LOOKUPS = 10

# How each outcome answers over HTTP: errors keep their meaning for scripts and
# monitoring, while htmx is configured to swap error answers in like any other.
_STATUS = {
    Outcome.FOUND: 200,
    Outcome.PROJECT_NOT_FOUND: 404,
    Outcome.NO_CUSTOMER: 404,
    Outcome.NOT_AUTHORISED: 403,
    # Solar Proof refused this project to the portal: nobody may see it here either.
    Outcome.UPSTREAM_NOT_AUTHORISED: 403,
    Outcome.API_KEY_INVALID: 502,
    Outcome.INVALID_PARAMETERS: 502,
    Outcome.UPSTREAM_ERROR: 502,
    Outcome.UPSTREAM_UNAVAILABLE: 503,
    Outcome.RATE_LIMITED: 429,
}


def _require_look_up_role(request: HttpRequest) -> None:
    access.require_role(request.user, access.LOOK_UP_PERMISSION, access.LOOK_UP_ROLES)


@require_GET
@login_required
@never_cache
def search(request: HttpRequest) -> HttpResponse:
    _require_look_up_role(request)
    if "project" not in request.GET:
        # ?q= only fills the field in (Back to a search page), it never looks anything up.
        return _render_lookup(request, ProjectSearchForm(initial={"project": request.GET.get("q", "")[:40]}))
    form = ProjectSearchForm(request.GET)
    if not form.is_valid():
        return _render_lookup(request, form, status=400)
    project_id = form.cleaned_data["project"]
    if request.htmx:
        return _project_response(request, project_id)
    url = reverse("customers:project", kwargs={"project_id": project_id})
    reason = _reason_form(request).as_query()
    if reason:
        url = f"{url}?{urlencode(reason)}"
    cross_site.pass_on_vouch(request, url)
    return redirect(url)


@require_GET
@login_required
@never_cache
def project(request: HttpRequest, project_id: int) -> HttpResponse:
    form = ProjectSearchForm({"project": str(project_id)})
    if not form.is_valid():
        return _render_lookup(request, form, status=400)
    return _project_response(request, form.cleaned_data["project"])


def _reason_form(request: HttpRequest) -> ReasonForm:
    """The reason given with this request (LOOKUP_REASON), from its query string."""
    return ReasonForm(request.GET, required=settings.LOOKUP_REASON == "required")


@require_GET
@login_required
@never_cache
def not_a_project(request: HttpRequest, rest: str) -> HttpResponse:
    """A path under /projects/ that no project route matched. "/projects/2143" gets its
    slash; otherwise the search page says what a project ID is (404: there is no such page)."""
    _require_look_up_role(request)
    segment, slash, _ = rest.partition("/")
    if not segment:
        return redirect("customers:search")
    form = ProjectSearchForm({"project": segment[:40]})
    if form.is_valid() and not slash and segment.isdigit():
        return redirect("customers:project", project_id=form.cleaned_data["project"])
    if form.is_valid():
        return render(request, "404.html", status=404)
    return _render_lookup(request, form, status=404)


def _look_up(request: HttpRequest, form: ProjectSearchForm, project_id: int) -> lookups.LookupResult | HttpResponse:
    """The audited lookup for this request; a refusal comes back as the page that says so.
    Without a role, NotPermitted (written to the log first) becomes the 403 page.
    Another site's link gets the one-tap confirmation instead: nothing asked, nothing written.
    When a reason is required and missing, nothing is looked up: the form asks for one."""
    if cross_site.is_cross_site(request):
        _require_look_up_role(request)
        return cross_site.confirmation(request, project_ids=[project_id])
    reason = None
    if settings.LOOKUP_REASON != "off":
        reason_form = _reason_form(request)
        if not reason_form.is_valid():
            return _render_lookup(request, form, reason_form=reason_form, status=400)
        reason = reason_form.cleaned_data["text"]
    try:
        return lookups.look_up_customer(
            user=request.user,
            project_id=project_id,
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            request_id=getattr(request, "request_id", ""),
            refresh=request.GET.get("refresh") == "1",
            auth_method=auth_method(request),
            reason=reason,
        )
    except lookups.AuditUnavailable as exc:
        return _render_lookup(request, form, problem=str(exc), status=503)


def _project_response(
    request: HttpRequest, project_id: int, *, visit_form: SiteVisitForm | None = None, status: int | None = None
) -> HttpResponse:
    """The result page (or partial). Every path to a customer goes through the audited lookup."""
    form = ProjectSearchForm(initial={"project": project_id})
    result = _look_up(request, form, project_id)
    if isinstance(result, HttpResponse):
        return result
    response = _render_lookup(
        request,
        form,
        result=result,
        card=customer_card(result.customer, project_id=project_id) if result.customer else None,
        visit_form=visit_form or SiteVisitForm(),
        todays_sheet=run_sheets.todays_projects(request.session),
        status=status if result.found and status else _STATUS[result.outcome],
    )
    if request.htmx:
        push_url(response, reverse("customers:project", kwargs={"project_id": project_id}))
    return response


def _download(
    request: HttpRequest, project_id: int, build: Callable[[CustomerCard], tuple[bytes | str, str, str]]
) -> HttpResponse:
    """A file made from the customer: looked up (and audited) like any other view of them."""
    form = ProjectSearchForm({"project": str(project_id)})
    if not form.is_valid():
        return _render_lookup(request, form, status=400)
    result = _look_up(request, form, project_id)
    if isinstance(result, HttpResponse):
        return result
    if not result.found:
        return _render_lookup(request, form, result=result, status=_STATUS[result.outcome])
    body, content_type, filename = build(customer_card(result.customer, project_id=project_id))
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@login_required
def contact_vcf(request: HttpRequest, project_id: int) -> HttpResponse:
    return _download(
        request,
        project_id,
        lambda card: (contact_files.vcard(card), "text/vcard; charset=utf-8", f"customer-project-{project_id}.vcf"),
    )


@require_GET
@login_required
def site_visit_ics(request: HttpRequest, project_id: int) -> HttpResponse:
    visit_form = SiteVisitForm(request.GET)
    if not visit_form.is_valid():
        return _project_response(request, project_id, visit_form=visit_form, status=400)
    start, minutes = visit_form.cleaned_data["start"], int(visit_form.cleaned_data["minutes"])
    return _download(
        request,
        project_id,
        lambda card: (
            contact_files.site_visit(card, start=start, minutes=minutes),
            "text/calendar; charset=utf-8",
            f"site-visit-project-{project_id}.ics",
        ),
    )


def _render_lookup(
    request: HttpRequest, form: ProjectSearchForm, *, status: int = 200, **context: object
) -> HttpResponse:
    context = {"form": form, "recent": _recent_lookups(request), **_reason_context(request, context), **context}
    template = "customers/_lookup.html" if request.htmx else "customers/lookup.html"
    response = render(request, template, context, status=status)
    # One URL, two bodies: caches and the back button must not mix the partial and the page.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _reason_context(request: HttpRequest, context: dict[str, object]) -> dict[str, object]:
    """The reason picker's state, and the reason as a query string for the result's links
    (save contact, calendar event, refresh), which look the customer up again."""
    if settings.LOOKUP_REASON == "off":
        return {"reason_mode": "off"}
    reason_form = context.get("reason_form")
    if reason_form is None:
        given = "reason" in request.GET or "reason_other" in request.GET
        reason_form = _reason_form(request) if given else ReasonForm(required=settings.LOOKUP_REASON == "required")
    query = reason_form.as_query() if reason_form.is_bound else {}
    return {
        "reason_mode": settings.LOOKUP_REASON,
        "reason_form": reason_form,
        "reason_query": urlencode(query),
        "reason_fields": list(query.items()),
    }


def _recent_lookups(request: HttpRequest) -> list[dict[str, object]]:
    """The user's last few distinct projects, newest first, one tap each."""
    if not request.user.is_authenticated:
        return []
    recent: dict[int, dict[str, object]] = {}
    url = reverse("customers:project", kwargs={"project_id": 0}).replace("/0/", "/{}/")
    for event in LookupEvent.objects.recent_for(request.user.pk, RECENT_LOOKUPS * 3):
        event["url"] = url.format(event["project_id"])
        recent.setdefault(event["project_id"], event)
        if len(recent) == RECENT_LOOKUPS:
            break
    return list(recent.values())


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive. Touches nothing, so a database outage does not restart it."""
    return HttpResponse("ok", content_type="text/plain")


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready while the database answers. A cache outage is reported as degraded with 200:
    the portal keeps serving without Redis (no cache, per-process rate limits), so taking
    it out of the load balancer would turn a degraded service into none."""
    checks = {"database": "ok", "cache": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        logger.warning("Readiness: database unreachable", exc_info=True)
        checks["database"] = "unavailable"
    try:
        cache.set("readyz", "1", timeout=5)
        if cache.get("readyz") != "1":
            raise RuntimeError("cache did not return what was stored")
    except Exception:
        logger.warning("Readiness: cache unreachable", exc_info=True)
        checks["cache"] = "degraded"
    ready = checks["database"] == "ok"
    return JsonResponse({"ready": ready, **checks}, status=200 if ready else 503)


def _history_filters(form: HistoryFilterForm) -> history.Filters:
    data = form.cleaned_data
    return history.Filters(
        user=data.get("user", ""),
        project=data.get("project"),
        outcome=data.get("outcome", ""),
        date_from=data.get("from"),
        date_to=data.get("to"),
    )


def _sequence_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


def _record_review(request: HttpRequest, kind: HistoryReview.Kind, filters: history.Filters, *, rows: int) -> None:
    history.record_review(
        user=request.user,
        kind=kind,
        detail=filters.as_record(),
        rows=rows,
        ip=client_ip(request),
        request_id=request.request_id,
    )


can_review_history = access.role_required(access.REVIEW_PERMISSION, access.REVIEW_ROLES)


@require_GET
@login_required
@can_review_history
@never_cache
def history_page(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "page": None, "filters": None}
        return _render_history(request, context, status=400)
    filters = _history_filters(form)
    page = history.page_of(
        history.filter_events(filters),
        before=_sequence_param(request, "before"),
        after=_sequence_param(request, "after"),
    )
    _record_review(request, HistoryReview.Kind.VIEW, filters, rows=len(page.events))
    return _render_history(request, {"form": form, "page": page, "filters": filters})


def _render_history(request: HttpRequest, context: dict[str, object], *, status: int = 200) -> HttpResponse:
    query = request.GET.copy()
    for key in ("before", "after"):
        query.pop(key, None)
    context["query"] = query.urlencode()
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "customers/_history_table.html", context, status=status)
    else:
        summary = history.summary()
        context.update(summary=summary, chart=day_chart(summary.per_day), tab="history")
        response = render(request, "customers/history.html", context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@login_required
@can_review_history
def history_export(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET)
    if not form.is_valid():
        errors = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in form.errors.items())
        return HttpResponse(f"Cannot export: {errors}\n", status=400, content_type="text/plain; charset=utf-8")
    filters = _history_filters(form)
    events, count = history.export_snapshot(filters)
    _record_review(request, HistoryReview.Kind.EXPORT, filters, rows=count)
    response = StreamingHttpResponse(history.export_csv(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="lookup-history-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@login_required
@can_review_history
@never_cache
def history_reviews(request: HttpRequest) -> HttpResponse:
    before = _sequence_param(request, "before")
    reviews = HistoryReview.objects.order_by("-sequence")
    if before is not None:
        reviews = reviews.filter(sequence__lt=before)
    rows = list(reviews[: history.PAGE_SIZE + 1])
    older = rows[history.PAGE_SIZE - 1].sequence if len(rows) > history.PAGE_SIZE else None
    context = {"reviews": rows[: history.PAGE_SIZE], "older": older, "tab": "reviews"}
    return render(request, "customers/history_reviews.html", context)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 403 page. Someone with a portal role is told which role this page needs;
    someone with none, whom to ask for one (the groups to join, with company sign-in)."""
    needed = tuple(getattr(exception, "roles", ()))
    held = []
    if request.user.is_authenticated:
        held = [name for name in request.user.groups.values_list("name", flat=True) if name in access.LOOK_UP_ROLES]
    groups = []
    if signed_in_with_company_account(request):
        groups = [f"{value} ({role})" for value, role in settings.OIDC_ROLE_MAP.items() if role in needed]
    context = {
        "held_roles": sorted(held, key=access.LOOK_UP_ROLES.index),
        "needed_roles": access.either(needed) if needed else "",
        "needed_groups": groups,
    }
    response = render(request, "403.html", context, status=403)
    if request.htmx:
        # A whole page, not a fragment to swap into the search: htmx reloads the address
        # instead (a role removed mid-session), which answers with this page in full.
        response["HX-Refresh"] = "true"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 handler. A database outage gets its own plain 503: nothing is shown, the
    portal recovers by itself when the database is back."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DatabaseError):
        logger.error("Database unavailable: %s", type(exc).__name__)
        body = render_to_string("503.html")
        return HttpResponse(body, status=503, headers={"Retry-After": "30"})
    return HttpResponse(render_to_string("500.html"), status=500)
