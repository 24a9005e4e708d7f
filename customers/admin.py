from django.contrib import admin
from django.http import HttpRequest

from customers.models import LookupEvent


@admin.register(LookupEvent)
class LookupEventAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: the audit log is evidence."""

    list_display = (
        "created_at",
        "username",
        "project_id",
        "outcome",
        "customer_id",
        "channel",
        "ip",
        "duration_ms",
        "cache_hit",
    )
    list_filter = ("outcome", "channel")
    search_fields = ("=username", "=project_id")
    list_select_related = ("user",)
    show_full_result_count = False
    date_hierarchy = "created_at"
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LookupEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LookupEvent | None = None) -> bool:
        return False
