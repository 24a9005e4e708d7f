"""Authentication backends: passwords (maybe only for break-glass superusers), and
company accounts, which only the OpenID Connect callback signs in."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


class PasswordBackend(ModelBackend):
    """Django's username and password check, limited by LOCAL_LOGIN."""

    def user_can_authenticate(self, user: Any) -> bool:
        if settings.LOCAL_LOGIN == "superusers" and not user.is_superuser:
            return False
        return super().user_can_authenticate(user)


class CompanyAccountBackend(ModelBackend):
    """Holds sessions signed in through the identity provider. It never checks a
    password: the callback logs the user in with this backend once the ID token is verified."""

    def authenticate(self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any):
        return None
