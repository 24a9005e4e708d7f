"""Authentication backends: passwords (maybe only for break-glass superusers), and
company accounts, which only the OpenID Connect callback signs in."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission

# The user the request's session row brought (accounts/session_store.py), while
# django.contrib.auth.get_user runs for that request (accounts/middleware.py).
session_user: ContextVar[Any] = ContextVar("session_user", default=None)


class _PortalModelBackend(ModelBackend):
    """Django's permission check in one query instead of two (the user's own permissions
    and their groups' are one UNION). Still read from the database on every request, so
    a removed role counts at once; cached only on this request's user object, as Django does."""

    def get_user(self, user_id: Any) -> Any:
        """The user read with the session, when it is the one the session names; Django's
        checks (active, LOCAL_LOGIN, then get_user's password-hash check) apply as ever."""
        user = session_user.get()
        if user is not None and user.pk == user_id:
            return user if self.user_can_authenticate(user) else None
        return super().get_user(user_id)

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None or user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            fields = ("content_type__app_label", "codename")
            own = Permission.objects.filter(user=user_obj).order_by().values_list(*fields)
            from_groups = Permission.objects.filter(group__user=user_obj).order_by().values_list(*fields)
            user_obj._perm_cache = {f"{app}.{codename}" for app, codename in own.union(from_groups)}
        return user_obj._perm_cache


class PasswordBackend(_PortalModelBackend):
    """Django's username and password check, limited by LOCAL_LOGIN."""

    def user_can_authenticate(self, user: Any) -> bool:
        if settings.LOCAL_LOGIN == "superusers" and not user.is_superuser:
            return False
        return super().user_can_authenticate(user)


class CompanyAccountBackend(_PortalModelBackend):
    """Holds sessions signed in through the identity provider. It never checks a
    password: the callback logs the user in with this backend once the ID token is verified."""

    def authenticate(self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any):
        return None
