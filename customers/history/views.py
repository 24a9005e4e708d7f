"""The admins' pages over the audit log: lookup history, its CSV export, and the record
of who read it. Every read of the log is itself written to the review chain."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from customers import access
from customers.audit import log as audit_log
from customers.cards.presentation import day_chart
from customers.cross_site import confirm_cross_site
from customers.history import export
from customers.history import queries as history
from customers.history.forms import HistoryFilterForm
from customers.models import HistoryReview
from solarproof_portal.middleware import client_ip


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
    events, count = export.export_snapshot(filters)
    _record_review(request, HistoryReview.Kind.EXPORT, filters, rows=count)
    response = StreamingHttpResponse(export.export_csv(events), content_type="text/csv; charset=utf-8")
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
