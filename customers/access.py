"""Which role a page needs, and the refusal that says so (the 403 page names the role)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

LOOK_UP_PERMISSION = "customers.look_up_customer"
REVIEW_PERMISSION = "customers.view_lookupevent"

# The roles (groups, made by migration 0002) that hold each permission.
LOOK_UP_ROLES = ("Sales", "Installers", "Admins")
REVIEW_ROLES = ("Admins",)


class RoleRequired(PermissionDenied):
    """A refusal that knows which roles would have been allowed."""

    def __init__(self, roles: tuple[str, ...], message: str = "") -> None:
        self.roles = roles
        super().__init__(message or f"Needs one of the roles {', '.join(roles)}.")


def require_role(user: object, permission: str, roles: tuple[str, ...]) -> None:
    if not user.has_perm(permission):  # type: ignore[attr-defined]
        raise RoleRequired(roles)


def role_required(
    permission: str, roles: tuple[str, ...]
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            require_role(request.user, permission, roles)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def either(roles: tuple[str, ...] | list[str]) -> str:
    """ "Admins", "Sales, Installers or Admins": as the 403 page says it."""
    roles = list(roles)
    return roles[0] if len(roles) == 1 else f"{', '.join(roles[:-1])} or {roles[-1]}"


def held_roles(user: Any) -> list[str]:
    """The portal roles the user holds, in the roles' own order. A user the session
    brought (accounts/session_store.py) comes with their group names, read in the same
    statement; any other user's are read here."""
    if not user.is_authenticated:
        return []
    names = getattr(user, "group_names", None)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))
    return [role for role in LOOK_UP_ROLES if role in names]


def role_at_the_time(user: Any) -> str:
    """The roles written on a user's audit rows: "Sales", "Sales, Admins", "superuser", or
    "" for none. Read once per request (kept on the request's user object)."""
    cached = getattr(user, "_portal_role", None)
    if cached is None:
        roles = ", ".join(held_roles(user))
        cached = roles or ("superuser" if getattr(user, "is_superuser", False) else "")
        user._portal_role = cached
    return cached
