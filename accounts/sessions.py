"""What a session remembers about how it was signed in."""

from __future__ import annotations

import time

from django.http import HttpRequest

from accounts.models import AuthMethod

AUTH_METHOD_KEY = "auth_method"
CHECKED_AT_KEY = "oidc_checked_at"


def auth_method(request: HttpRequest) -> AuthMethod:
    # Sessions from before company sign-in existed were all password sign-ins.
    return AuthMethod(request.session.get(AUTH_METHOD_KEY, AuthMethod.LOCAL))


def signed_in_with_company_account(request: HttpRequest) -> bool:
    session = getattr(request, "session", None)
    return session is not None and session.get(AUTH_METHOD_KEY) == AuthMethod.OIDC


def mark_signed_in(request: HttpRequest, method: AuthMethod) -> None:
    request.session[AUTH_METHOD_KEY] = method.value
    if method == AuthMethod.OIDC:
        request.session[CHECKED_AT_KEY] = time.time()


def renewal_due(request: HttpRequest, renew_seconds: int) -> bool:
    """A company sign-in the provider has not confirmed for ``renew_seconds``."""
    if not signed_in_with_company_account(request):
        return False
    return time.time() - request.session.get(CHECKED_AT_KEY, 0) >= renew_seconds
