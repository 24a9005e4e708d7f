"""The run sheet's pages: parse, call the run-sheet service, render. Nothing of Solar Proof."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.sessions import auth_method
from customers import access, cross_site
from customers.cards.presentation import CustomerCard, RouteLeg, customer_card, route_legs
from customers.forms import ProjectSearchForm, ReasonForm, RunSheetForm
from customers.run_sheets import device
from customers.run_sheets import service as run_sheets
from solarproof_portal.middleware import client_ip


@dataclass(frozen=True)
class Job:
    """One stop of the day as the sheet shows it."""

    number: int
    entry: run_sheets.SheetEntry
    card: CustomerCard | None
    up_href: str
    down_href: str

    @property
    def project_id(self) -> int:
        return self.entry.project_id

    @property
    def name(self) -> str:
        return self.card.name if self.card else f"project {self.project_id}"

    @property
    def problem(self) -> str:
        if self.entry.result is not None and not self.entry.result.found:
            return self.entry.result.message
        return self.entry.problem


def _require_role(request: HttpRequest) -> None:
    access.require_role(request.user, access.LOOK_UP_PERMISSION, access.LOOK_UP_ROLES)


def sheet_url(project_ids: list[int], reason: dict[str, str] | None = None) -> str:
    query = f"projects={','.join(map(str, project_ids))}"
    if reason:
        query += "&" + urlencode(reason)
    return f"{reverse('customers:run_sheet')}?{query}"


def _reason_form(data: QueryDict) -> ReasonForm | None:
    """Why the sheet's customers are looked up, as for a single lookup (LOOKUP_REASON)."""
    if settings.LOOKUP_REASON == "off":
        return None
    return ReasonForm(data, required=settings.LOOKUP_REASON == "required")


def _sheet_form_page(
    request: HttpRequest, form: RunSheetForm, reason_form: ReasonForm | None, *, status: int = 200, **context: object
) -> HttpResponse:
    reason_form = reason_form or ReasonForm(required=settings.LOOKUP_REASON == "required")
    context = {"form": form, "reason_form": reason_form, **context}
    return render(request, "customers/run_sheet.html", context, status=status)


@require_GET
@login_required
@never_cache
def run_sheet(request: HttpRequest) -> HttpResponse:
    if "projects" not in request.GET:
        _require_role(request)
        todays = run_sheets.todays_projects(request.session)
        if todays:
            # The menu's Run sheet, after "Add to today's run sheet": the sheet itself, not
            # a form to submit first ("Change the projects" is on the sheet).
            canonical = sheet_url(todays)
            cross_site.pass_on_vouch(request, canonical)
            return redirect(canonical)
        return _sheet_form_page(request, RunSheetForm(), None)
    form = RunSheetForm(request.GET)
    reason_form = _reason_form(request.GET)
    if not form.is_valid() or (reason_form is not None and not reason_form.is_valid()):
        _require_role(request)
        return _sheet_form_page(request, form, reason_form, status=400)
    project_ids: list[int] = form.cleaned_data["projects"]
    reason = reason_form.as_query() if reason_form is not None else {}
    canonical = sheet_url(project_ids, reason)
    if request.get_full_path() != canonical:
        # One address per sheet, in the day's order, to bookmark or send to a colleague.
        # Another site's link must not put its words on the staff member's next page.
        if form.stray and not cross_site.is_cross_site(request):
            messages.warning(request, "Left out, not project IDs: " + " ".join(form.stray[:20]))
        cross_site.pass_on_vouch(request, canonical)
        return redirect(canonical)
    if cross_site.is_cross_site(request):
        # A sheet sent from another site or an email: one tap first, as for a single lookup.
        _require_role(request)
        return cross_site.confirmation(request, project_ids=project_ids, what="run sheet")
    # Without a role, the service audits each project's refusal, then answers 403.
    return _render_sheet(request, project_ids, reason_form)


@require_POST
@login_required
@never_cache
def run_sheet_keep(request: HttpRequest) -> HttpResponse:
    """The sheet, looked up again, as the copy this device keeps for offline reading.
    Only run-sheet.js asks for it, on "Keep on this device for today"; that customers'
    details leave for a device is recorded, naming the projects."""
    _require_role(request)
    form = RunSheetForm(request.POST)
    reason_form = _reason_form(request.POST)
    if not form.is_valid() or (reason_form is not None and not reason_form.is_valid()):
        errors = [*form.errors.values(), *(reason_form.errors.values() if reason_form is not None else [])]
        return HttpResponse(errors[0][0], status=400, content_type="text/plain; charset=utf-8")
    project_ids = form.cleaned_data["projects"]
    run_sheets.record_kept_sheet(
        user=request.user, project_ids=project_ids, ip=client_ip(request), request_id=request.request_id
    )
    now = timezone.now()
    # Saved with this answer, so the session's end is the one kept_until counts from.
    request.session.modified = True
    until, why = device.kept_until(now=now)
    response = _render_sheet(request, project_ids, reason_form, kept_at=now)
    response["X-Kept-Until"] = str(int(until.timestamp() * 1000))
    response["X-Kept-Until-Reason"] = why
    return response


def _render_sheet(
    request: HttpRequest, project_ids: list[int], reason_form: ReasonForm | None, *, kept_at: object = None
) -> HttpResponse:
    reason = reason_form.as_query() if reason_form is not None else {}
    entries = run_sheets.look_up_run_sheet(
        user=request.user,
        project_ids=project_ids,
        ip=client_ip(request),
        user_agent=request.headers.get("User-Agent", ""),
        request_id=request.request_id,
        auth_method=auth_method(request),
        reason=reason_form.cleaned_data["text"] if reason_form is not None else None,
    )
    jobs = [_job(number, entry, project_ids, reason) for number, entry in enumerate(entries, start=1)]
    stops = [(job.number, job.card.customer.site_address) for job in jobs if job.card and job.card.directions_href]
    legs: list[RouteLeg] = route_legs(stops)
    context = {
        "form": RunSheetForm(initial={"projects": "\n".join(map(str, project_ids))}),
        "reason_form": reason_form,
        "reason_fields": list(reason.items()),
        "jobs": jobs,
        "legs": legs,
        "flagged": [job for job in jobs if job.card and job.card.address_warning],
        "off_route": [job for job in jobs if not (job.card and job.card.directions_href)],
        "canonical": ",".join(map(str, project_ids)),
        "kept_at": kept_at,
    }
    return render(request, "customers/run_sheet.html", context)


def _job(number: int, entry: run_sheets.SheetEntry, order: list[int], reason: dict[str, str]) -> Job:
    index = number - 1

    def moved(to: int) -> str:
        if not 0 <= to < len(order):
            return ""
        swapped = list(order)
        swapped[index], swapped[to] = swapped[to], swapped[index]
        return f"{sheet_url(swapped, reason)}#job-{entry.project_id}"

    result = entry.result
    card = customer_card(result.customer, project_id=entry.project_id) if result and result.customer else None
    return Job(number=number, entry=entry, card=card, up_href=moved(index - 1), down_href=moved(index + 1))


@require_POST
@login_required
@never_cache
def run_sheet_add(request: HttpRequest) -> HttpResponse:
    """ "Add to today's run sheet" on a result page: kept in the session, not the browser."""
    _require_role(request)
    form = ProjectSearchForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors["project"][0], status=400, content_type="text/plain; charset=utf-8")
    project_id = form.cleaned_data["project"]
    try:
        todays = run_sheets.add_to_todays_sheet(request.session, project_id=project_id)
    except ValueError as exc:
        if request.htmx:
            return HttpResponse(format_html('<p class="sheet-add field-error" id="sheet-add" role="alert">{}</p>', exc))
        messages.error(request, str(exc))
        return redirect("customers:run_sheet")
    if request.htmx:
        context = {"result": {"project_id": project_id}, "todays_sheet": todays}
        return render(request, "customers/_run_sheet_add.html", context)
    return redirect(sheet_url(todays))


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """The run sheet's service worker, served from /run-sheet/ so its scope covers the
    sheet and nothing else. It holds no customer data and needs no sign-in."""
    body = render_to_string("customers/run_sheet_sw.js")
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    # Browsers check for a new worker on every visit; never serve them an old one.
    response["Cache-Control"] = "no-cache"
    return response
