"""Thin views: parse the request, call the lookup service, pick the page or the partial."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from accounts.sessions import auth_method
from customers import access, cross_site, lookups
from customers.cards import contact_files
from customers.cards.presentation import CustomerCard, customer_card
from customers.forms import ProjectSearchForm, ReasonForm, SiteVisitForm
from customers.history import queries as history
from customers.run_sheets import service as run_sheets
from solarproof_portal.middleware import client_ip

logger = logging.getLogger(__name__)

RECENT_LOOKUPS = 10


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
        response = _render_lookup(request, form, status=400)
        if request.htmx:
            # The address says what is on screen: reloading it shows the same message, not
            # the project looked up before the typo.
            push_url(response, request.get_full_path())
        return response
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
    if _VISIT_FIELDS & request.GET.keys():
        # Sent back by site_visit_ics: the visit form as it was filled in, with what is wrong.
        visit_form = SiteVisitForm(request.GET)
        if not visit_form.is_valid():
            return _project_response(request, form.cleaned_data["project"], visit_form=visit_form, status=400)
    return _project_response(request, form.cleaned_data["project"])


_VISIT_FIELDS = set(SiteVisitForm.base_fields)


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
        response = result
    else:
        response = _render_lookup(
            request,
            form,
            result=result,
            card=customer_card(result.customer, project_id=project_id) if result.customer else None,
            visit_form=visit_form or SiteVisitForm(),
            todays_sheet=run_sheets.todays_projects(request.session),
            status=status if result.found and status else result.outcome.status,
        )
    if request.htmx and "HX-Refresh" not in response:
        # Whatever came back (the customer, a problem, a reason to give), it is this
        # project's page: the address follows, so reloading it shows the same.
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
        return _render_lookup(request, form, result=result, status=result.outcome.status)
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
    form = ProjectSearchForm({"project": str(project_id)})
    if not form.is_valid():
        return _render_lookup(request, form, status=400)
    visit_form = SiteVisitForm(request.GET)
    if not visit_form.is_valid():
        if cross_site.is_cross_site(request):
            _require_look_up_role(request)
            return cross_site.confirmation(request, project_ids=[project_id])
        # The form again, with its message, on the project's own page: the address bar
        # names a page (reloading shows the same), not a calendar file that never came.
        url = f"{reverse('customers:project', kwargs={'project_id': project_id})}?{request.GET.urlencode()}"
        cross_site.pass_on_vouch(request, url)
        return redirect(url)
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
    if context.get("result") is not None:
        # An audited outcome, a 502 or 503 from Solar Proof among them, is told already: by
        # the lookup's own line, and an outage once, by its circuit breaker. Without this
        # django.request would add an ERROR line for every such page during an outage.
        response._has_been_logged = True  # type: ignore[attr-defined]
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
    recent = history.recent_lookups(request.user.pk, count=RECENT_LOOKUPS)
    url = reverse("customers:project", kwargs={"project_id": 0}).replace("/0/", "/{}/")
    return [{**event, "url": url.format(event["project_id"])} for event in recent]
