"""Signing in: the password form, and the company account through OpenID Connect."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.views import LoginView, LogoutView
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts import company_accounts, oidc
from accounts.company_accounts import company_account_sign_in
from accounts.middleware import renewal_exempt
from accounts.models import AuthMethod
from accounts.sessions import mark_signed_in, signed_in_with_company_account
from customers import cross_site

logger = logging.getLogger(__name__)

COMPANY_BACKEND = "accounts.backends.CompanyAccountBackend"


def _sign_in_context(next_url: str) -> dict[str, Any]:
    return {
        "next": next_url,
        "oidc_enabled": oidc.enabled(),
        "oidc_button_label": settings.OIDC_BUTTON_LABEL,
        "local_login": settings.LOCAL_LOGIN,
    }


class PortalLoginView(LoginView):
    redirect_authenticated_user = True

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        next_url = self.get_redirect_url()
        if next_url and not request.user.is_authenticated and cross_site.is_cross_site(request):
            # Another site's link to a customer, met by the sign-in page: signing in must not
            # turn that link into a lookup (customers/cross_site.py).
            cross_site.remember_sign_in_from_elsewhere(request, next_url)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        return {**context, **_sign_in_context(context.get("next", ""))}

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        mark_signed_in(self.request, AuthMethod.LOCAL)
        return response


class PortalLogoutView(LogoutView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        company = oidc.enabled() and request.user.is_authenticated and signed_in_with_company_account(request)
        response = super().post(request, *args, **kwargs)
        # A run sheet kept on this device for offline reading (and its service worker)
        # goes with the session: the browser deletes the origin's storage on this answer.
        response["Clear-Site-Data"] = '"storage"'
        if company:
            after = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
            provider_sign_out = oidc.end_session_url(after=after)
            if provider_sign_out:
                response = HttpResponseRedirect(provider_sign_out, headers={"Clear-Site-Data": '"storage"'})
        return response


def _safe_next(request: HttpRequest, url: str | None) -> str:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _sign_in_problem(request: HttpRequest, problem: oidc.SignInFailed, next_url: str) -> HttpResponse:
    context = {**_sign_in_context(next_url), "form": None, "problem": str(problem)}
    return render(request, "registration/login.html", context, status=problem.status)


def _company_sign_in_view(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """A step of the company sign-in: GET only, never cached, 404 until it is set up,
    and never itself sent for a re-check."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest) -> HttpResponse:
        if not oidc.enabled():
            raise Http404("Company sign-in is not set up.")
        return view(request)

    return renewal_exempt(require_GET(never_cache(wrapped)))


@_company_sign_in_view
def oidc_start(request: HttpRequest) -> HttpResponse:
    """The button on the sign-in page: off to the provider."""
    next_url = _safe_next(request, request.GET.get("next"))
    try:
        from_portal = not cross_site.is_cross_site(request) and not cross_site.sign_in_from_elsewhere(request, next_url)
        return oidc.authorization_redirect(request, next_url=next_url, from_portal=from_portal)
    except oidc.SignInFailed as problem:
        return _sign_in_problem(request, problem, next_url)


def _same_person(request: HttpRequest, verified: oidc.Verified) -> bool:
    return company_accounts.is_account_of(request.user, issuer=verified.issuer, subject=str(verified.claims["sub"]))


@_company_sign_in_view
def oidc_callback(request: HttpRequest) -> HttpResponse:
    """The provider sends the browser back here, after a sign-in or a silent re-check."""
    try:
        verified = oidc.verify_callback(request)
    except oidc.SignInFailed as problem:
        signed_in_here = request.user.is_authenticated and signed_in_with_company_account(request)
        if signed_in_here and problem.reason != "state":
            # The re-check did not end with the provider vouching for this person again
            # (signed out, disabled, or an answer that failed verification).
            auth.logout(request)
        return _sign_in_problem(request, problem, _safe_next(request, request.GET.get("next")))
    if verified.silent and request.user.is_authenticated and not _same_person(request, verified):
        # The provider's browser session now belongs to someone else (a shared tablet): the
        # re-check vouches for them, not for whoever this session is. Sign out; never switch.
        logger.warning("Re-check answered for another person: user %s signed out", request.user.pk)
        auth.logout(request)
        problem = oidc.SignInFailed(
            f"{oidc.provider_name(starts_sentence=True)} is now signed in as someone else, "
            "so you have been signed out of the portal. Sign in again.",
            reason="other_person",
            status=403,
        )
        return _sign_in_problem(request, problem, _safe_next(request, verified.next_url))
    user = company_account_sign_in(issuer=verified.issuer, claims=verified.claims)
    if not user.is_active:
        auth.logout(request)
        logger.warning("Sign-in refused: portal account %s is switched off", user.pk)
        problem = oidc.SignInFailed(
            f"Your portal account has been switched off. Ask {settings.PORTAL_ACCESS_CONTACT}.",
            reason="inactive",
            status=403,
        )
        return _sign_in_problem(request, problem, verified.next_url)
    if request.user != user:
        auth.login(request, user, backend=COMPANY_BACKEND)
    mark_signed_in(request, AuthMethod.OIDC)
    logger.info("Signed in user %s with the company account%s", user.pk, " (re-checked)" if verified.silent else "")
    next_url = _safe_next(request, verified.next_url)
    if verified.from_portal:
        # The provider's redirect makes the way back cross-site; the trip began on the portal.
        cross_site.vouch_for(request, next_url)
    return HttpResponseRedirect(next_url)
