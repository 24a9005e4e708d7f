from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.http import HttpRequest
from django.utils.functional import cached_property

from customers.models import AuditAnchor, HistoryReview, LookupEvent


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


@admin.register(LookupEvent)
class LookupEventAdmin(ReadOnlyAdmin):
    list_display = (
        "sequence", "created_at", "username", "project_id", "outcome", "customer_id", "channel", "auth_method", "ip",
        "duration_ms",
    )  # fmt: skip
    # Each filter and search matches an index (outcome, username, project_id with sequence).
    list_filter = ("outcome",)
    search_fields = ("=username", "=project_id")
    list_select_related = ("user",)


@admin.register(HistoryReview)
class HistoryReviewAdmin(ReadOnlyAdmin):
    list_display = ("sequence", "created_at", "username", "kind", "detail", "rows", "ip")
    list_filter = ("kind",)


@admin.register(AuditAnchor)
class AuditAnchorAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "username", "through_sequence", "events_pruned", "older_than_days")
