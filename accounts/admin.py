from django.contrib import admin
from django.http import HttpRequest

from accounts.models import CompanyAccount


@admin.register(CompanyAccount)
class CompanyAccountAdmin(admin.ModelAdmin):
    """Made by sign-in, from the provider's word: shown, never edited by hand. Switching
    a person off is done at the provider, or on their portal user (active)."""

    list_display = ("user", "issuer", "subject", "roles", "last_checked")
    search_fields = ("user__username", "=subject")
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
