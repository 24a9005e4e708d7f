"""Company sign-ins are trusted for OIDC_RENEW_SECONDS; then the provider is asked again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.functional import SimpleLazyObject
from django_htmx.http import HttpResponseClientRedirect

from accounts import oidc
from accounts.backends import session_user
from accounts.sessions import renewal_due
from customers import cross_site


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's, except that ``request.user`` is the user the session's own statement
    read (accounts/session_store.py) rather than a second query. It goes through
    ``django.contrib.auth.get_user`` all the same, with every check that makes."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _user(request))


def _user(request: HttpRequest) -> Any:
    if not hasattr(request, "_cached_user"):
        loaded = getattr(request.session, "loaded_user", None)
        token = session_user.set(loaded() if loaded else None)
        try:
            request._cached_user = auth.get_user(request)  # type: ignore[attr-defined]
        finally:
            session_user.reset(token)
    return request._cached_user  # type: ignore[attr-defined]


def renewal_exempt(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Views that run whatever the state of the sign-in (the sign-in flow itself, sign-out)."""
    view.renewal_exempt = True  # type: ignore[attr-defined]
    return view


class CompanySignInRenewalMiddleware:
    """When a company sign-in is due for its re-check, the request goes to the provider
    first (prompt=none: no page is shown when all is well) and then comes back to the
    same address. htmx requests get HX-Redirect, so the whole page makes that trip
    rather than the provider's answer being swapped into part of it. A disabled account
    or a removed role therefore counts within OIDC_RENEW_SECONDS."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        if getattr(view, "renewal_exempt", False) or not oidc.enabled():
            return None
        if settings.SESSION_COOKIE_NAME not in request.COOKIES or not renewal_due(request, settings.OIDC_RENEW_SECONDS):
            return None
        if not request.user.is_authenticated:
            return None
        next_url = request.get_full_path() if request.method == "GET" else "/"
        try:
            redirect = oidc.authorization_redirect(
                request, next_url=next_url, silent=True, from_portal=not cross_site.is_cross_site(request)
            )
        except oidc.SignInFailed as problem:
            return render(request, "registration/renewal_failed.html", {"problem": str(problem)}, status=problem.status)
        if getattr(request, "htmx", False):
            return HttpResponseClientRedirect(redirect["Location"])
        return redirect
