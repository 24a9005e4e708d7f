"""The project-level pages: health probes for load balancers and containers, the
browser's /favicon.ico, and the error pages Django falls back on (403, 500)."""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.db import Error as DatabaseFailure
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils.cache import patch_cache_control
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from accounts.sessions import signed_in_with_company_account
from customers import access
from solarproof_portal import database, health, metrics

logger = logging.getLogger(__name__)


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive. Touches nothing, so a database outage does not restart it."""
    return HttpResponse("ok", content_type="text/plain")


@require_safe
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready while the database answers. A cache outage is reported as degraded with 200:
    the portal keeps serving without Redis (no cache, per-process rate limits), so taking
    it out of the load balancer would turn a degraded service into none."""
    checks = {
        "database": "ok" if health.database_answers() else "unavailable",
        "cache": "ok" if health.cache_answers() else "degraded",
    }
    ready = checks["database"] == "ok"
    return JsonResponse({"ready": ready, **checks}, status=200 if ready else 503)


@require_safe
@never_cache
def metrics_page(request: HttpRequest) -> HttpResponse:
    """Prometheus's scrape, for whoever holds METRICS_TOKEN; to anyone else (and to
    everyone while it is unset) this address does not exist."""
    # The Bearer scheme only (case-insensitive, RFC 6750): the bare token, or another
    # scheme's credentials that happen to equal it, are not the scrape's header.
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not metrics.token_matches(offered, settings.METRICS_TOKEN):
        raise Http404
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages that name no icon (Django's admin): the
    portal's own, rather than a 404 in every admin page's console."""
    response = HttpResponsePermanentRedirect(static("favicon.svg"))
    patch_cache_control(response, public=True, max_age=86_400)
    return response


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 403 page. Someone with a portal role is told which role this page needs;
    someone with none, whom to ask for one (the groups to join, with company sign-in)."""
    needed = tuple(getattr(exception, "roles", ()))
    held = access.held_roles(request.user)
    groups = []
    if signed_in_with_company_account(request):
        groups = [f"{value} ({role})" for value, role in settings.OIDC_ROLE_MAP.items() if role in needed]
    context = {
        "held_roles": held,
        "needed_roles": access.either(needed) if needed else "",
        "needed_groups": groups,
    }
    response = render(request, "403.html", context, status=403)
    if request.htmx:
        # A whole page, not a fragment to swap into the search: htmx reloads the address
        # instead (a role removed mid-session), which answers with this page in full.
        response["HX-Refresh"] = "true"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 handler. A database outage gets its own plain 503: nothing is shown, the
    portal recovers by itself when the database is back."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DatabaseFailure):  # DatabaseError, and InterfaceError (the link to the server closed)
        logger.error("Database unavailable: %s", database.failure_in_words(exc))
        body = render_to_string("503.html")
        return HttpResponse(body, status=503, headers={"Retry-After": "30"})
    return HttpResponse(render_to_string("500.html"), status=500)
