from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.functional import cached_property

from customers.audit.log import record_review
from customers.models import AuditAnchor, HistoryReview, LookupEvent
from customers.outcomes import Outcome
from solarproof_portal.middleware import client_ip


class EstimatedCountPaginator(Paginator):
    """On PostgreSQL, an unfiltered list takes the planner's row estimate instead of
    counting every row; filtered lists are counted exactly (on an index)."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        connection = connections[getattr(self.object_list, "db", "default")]
        if query is not None and not query.where and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [query.model._meta.db_table]
                )
                row = cursor.fetchone()
            if row and row[0] > 10_000:
                return row[0]
        return super().count


class ReadOnlyAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: these records are evidence."""

    actions = None
    paginator = EstimatedCountPaginator
    # Counting a million audit rows on every page view is what the audit log cannot afford.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class OutcomeWordFilter(admin.SimpleListFilter):
    """The outcome words as stored and exported, so the admin reads like the CSV."""

    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(outcome.value, outcome.value) for outcome in Outcome]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(outcome=self.value()) if self.value() else queryset


@admin.register(LookupEvent)
class LookupEventAdmin(ReadOnlyAdmin):
    list_display = (
        "sequence", "created_at", "username", "project_id", "outcome_word", "customer_id", "channel", "auth_method",
        "ip", "duration_ms",
    )  # fmt: skip
    # Each filter and search matches an index (outcome, username, project_id with sequence).
    list_filter = (OutcomeWordFilter,)
    exclude = ("outcome",)
    readonly_fields = ("outcome_word",)
    search_fields = ("=username", "=project_id")
    list_select_related = ("user",)

    @admin.display(description="outcome", ordering="outcome")
    def outcome_word(self, event: LookupEvent) -> str:
        """The stored word (as in the CSV export), not the label staff read on the pages."""
        return event.outcome

    # Reading the log through the admin is on the record, like the history pages: a
    # review record for every list page and every event opened that was shown.

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = _shown(response, "cl")
        if changelist is not None:
            query = {key: request.GET.getlist(key)[-1][:150] for key in list(request.GET)[:20]}
            _record(request, HistoryReview.Kind.ADMIN_LIST, query, rows=len(changelist.result_list))
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        event = _shown(response, "original")
        if event is not None:
            _record(request, HistoryReview.Kind.ADMIN_VIEW, {"sequence": event.sequence}, rows=1)
        return response


def _shown(response: HttpResponse, name: str) -> Any:
    """What an admin page is about to show (None for a redirect: nothing shown)."""
    return (response.context_data or {}).get(name) if isinstance(response, TemplateResponse) else None


def _record(request: HttpRequest, kind: HistoryReview.Kind, detail: dict[str, Any], *, rows: int) -> None:
    record_review(
        user=request.user,
        kind=kind,
        detail=detail,
        rows=rows,
        ip=client_ip(request),
        request_id=getattr(request, "request_id", ""),
    )


@admin.register(HistoryReview)
class HistoryReviewAdmin(ReadOnlyAdmin):
    list_display = ("sequence", "created_at", "username", "kind", "detail", "rows", "ip")
    list_filter = ("kind",)


@admin.register(AuditAnchor)
class AuditAnchorAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "username", "through_sequence", "events_pruned", "older_than_days")
