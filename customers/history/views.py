"""The admins' pages over the audit log: lookup history, its CSV export, and the record
of who read it. Every read of the log is itself written to the review chain."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from customers import access
from customers.audit import checkpoints, signing
from customers.audit import log as audit_log
from customers.cards.presentation import day_chart
from customers.cross_site import confirm_cross_site
from customers.history import access_report, access_statement, export
from customers.history import queries as history
from customers.history.forms import HistoryFilterForm
from customers.models import HistoryReview
from solarproof_portal.middleware import client_ip

logger = logging.getLogger(__name__)


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
    audit_log.record_review(
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
@confirm_cross_site("lookup history")
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
    filters = context.get("filters")
    if isinstance(filters, history.Filters):
        context["export_query"] = urlencode(filters.as_record())
    if request.htmx and not request.htmx.history_restore_request:
        context["filters_out_of_band"] = True
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
@confirm_cross_site("export of the lookup history")
def history_export(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET)
    if not form.is_valid():
        errors = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in form.errors.items())
        return HttpResponse(f"Cannot export: {errors}\n", status=400, content_type="text/plain; charset=utf-8")
    filters = _history_filters(form)
    release = export.take_slot()
    if release is None:
        # Nothing read, nothing recorded: the admin tries again once a download is done.
        logger.info("History export turned away: this process is sending %d already", export.sending())
        busy = HttpResponse(
            f"Cannot export now: this server is already sending {settings.HISTORY_EXPORTS_AT_ONCE} "
            "exports of the lookup history, the most it sends at once so that lookups keep their "
            "database connections. Try again in a minute.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
            headers={"Retry-After": "60", "Cache-Control": "no-store"},
        )
        # Logged above, as what it is: not also as an ERROR by django.request (a 5xx), which
        # would page someone for a refusal the portal means (Django's own flag for this).
        busy._has_been_logged = True  # type: ignore[attr-defined]
        return busy
    try:
        events, count = export.export_snapshot(filters)
        _record_review(request, HistoryReview.Kind.EXPORT, filters, rows=count)
        chunks = export.HeldWhileSent(export.export_csv(events), release)
    except BaseException:
        release()
        raise
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="lookup-history-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@login_required
@can_review_history
@confirm_cross_site("record of who reviewed the history")
@never_cache
def history_reviews(request: HttpRequest) -> HttpResponse:
    reviews, older = history.reviews_page(before=_sequence_param(request, "before"))
    context = {"reviews": reviews, "older": older, "tab": "reviews"}
    return render(request, "customers/history_reviews.html", context)


# --- the customer access report ------------------------------------------------------


def _report_review(request: HttpRequest, report: access_report.AccessReport, *, form: str) -> None:
    audit_log.record_review(
        user=request.user,
        kind=HistoryReview.Kind.ACCESS_REPORT,
        detail={"customer_id": report.customer_id, "through_sequence": report.covers_to[0], "form": form}
        | ({"project": report.asked_project} if report.asked_project else {}),
        rows=report.row_count,
        ip=client_ip(request),
        request_id=request.request_id,
    )


def _asked(request: HttpRequest, customer_id: str) -> tuple[int, int | None]:
    """The customer in the address, and the project it was asked for by (``?project=``),
    which must be one the log records for that customer."""
    customer = access_report.parse_id(customer_id, "customer")
    project_text = request.GET.get("project", "")
    if not project_text:
        return customer, None
    project = access_report.parse_id(project_text, "project")
    if access_report.customer_of_project(project) != customer:
        raise access_report.ReportRefused(f"The log does not record project {project} for customer {customer}.")
    return customer, project


def _refused(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    context = {"refused": message, "form_customer": "", "form_project": "", "report": None}
    return render(request, "customers/access_report.html", context, status=status)


@require_GET
@login_required
@can_review_history
@confirm_cross_site("customer access report")
@never_cache
def access_report_form(request: HttpRequest) -> HttpResponse:
    """The form: a customer ID, or a project ID resolved to the customer the log recorded."""
    customer_text, project_text = request.GET.get("customer", "").strip(), request.GET.get("project", "").strip()
    context = {"form_customer": customer_text[:40], "form_project": project_text[:40], "report": None}
    if not customer_text and not project_text:
        return render(request, "customers/access_report.html", context)
    try:
        if customer_text and project_text:
            raise access_report.ReportRefused("Enter a customer ID or a project ID, not both.")
        if customer_text:
            return redirect("customers:access_report", customer_id=access_report.parse_id(customer_text, "customer"))
        project = access_report.parse_id(project_text, "project")
        customer = access_report.customer_of_project(project)
    except access_report.ReportRefused as refused:
        return render(request, "customers/access_report.html", {**context, "refused": str(refused)}, status=400)
    return redirect(reverse("customers:access_report", args=[customer]) + f"?project={project}")


@require_GET
@login_required
@can_review_history
@confirm_cross_site("access report for customer {customer_id}")
@never_cache
def access_report_page(request: HttpRequest, customer_id: str) -> HttpResponse:
    try:
        customer, project = _asked(request, customer_id)
        report = access_report.access_report_build(customer_id=customer, asked_project=project)
    except access_report.ReportRefused as refused:
        return _refused(request, str(refused), status=404)
    _report_review(request, report, form="page")
    public_key = signing.private_key().public_key()
    context = {
        "report": report,
        "company": settings.COMPANY_NAME,
        "flagged": report.flagged(),
        # What the recipient checks report.json with (public: printing it gives away nothing).
        "public_key": signing.public_key_text(public_key),
        "key_id": signing.key_id(public_key),
    }
    return render(request, "customers/access_report.html", context)


@require_GET
@login_required
@can_review_history
@confirm_cross_site("signed access report for customer {customer_id}")
def access_report_json(request: HttpRequest, customer_id: str) -> HttpResponse:
    """The signed statement. A fresh checkpoint (published like any other) fixes the
    point the report is read up to and covers its newest row."""
    try:
        customer, project = _asked(request, customer_id)
    except access_report.ReportRefused as refused:
        return JsonResponse({"error": str(refused)}, status=404)
    try:
        checkpoint = checkpoints.take_checkpoint()
    except OSError as exc:
        # Unpublished, the checkpoint would vouch for nothing outside the database.
        logger.error("Access report not made: its checkpoint could not be written (%s)", type(exc).__name__)
        return JsonResponse(
            {
                "error": "The signed report was not made: its checkpoint could not be written to the "
                "checkpoint file (AUDIT_CHECKPOINT_FILE). Tell whoever runs the portal; the report page still works."
            },
            status=503,
        )
    try:
        report = access_report.access_report_build(
            customer_id=customer, asked_project=project, through=checkpoint["sequence"]
        )
    except access_report.ReportRefused as refused:
        return JsonResponse({"error": str(refused)}, status=404)
    header = report.statement_header(generated_by=request.user.get_username(), company=settings.COMPANY_NAME)
    statement = access_statement.sign_statement(header, report.rows(), checkpoint)
    _report_review(request, report, form="json")
    response = HttpResponse(
        json.dumps(statement, indent=1, ensure_ascii=False) + "\n", content_type="application/json; charset=utf-8"
    )
    stamp = timezone.localtime(report.generated_at).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="access-report-customer-{customer}-{stamp}.json"'
    response["Cache-Control"] = "no-store"
    return response
