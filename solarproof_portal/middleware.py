"""Request IDs: one per request, on every log line, in the response, on the audit row."""

import contextvars
import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import resolve

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Accept an upstream proxy's ID only if it is short and plain: it lands in logs and in
# the audit log, so it must not be a channel for arbitrary text.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def current_request_id() -> str:
    return _request_id.get()


class RequestIDMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # A request ID ties audit rows together for an auditor, so only a trusted proxy in
        # front of the portal (TRUSTED_PROXY_COUNT) may set it; a browser's is ignored.
        offered = request.headers.get("X-Request-ID", "") if settings.TRUSTED_PROXY_COUNT else ""
        request_id = offered if _SAFE_ID.fullmatch(offered) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIDLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class ExpectedRefusalLogFilter(logging.Filter):
    """A refusal the portal means (PermissionDenied: no role, or not the role a page needs)
    is logged by django.request as one line, without the traceback of an error. So is a
    request for a host not in ALLOWED_HOSTS (django.security.DisallowedHost, which Django
    logs as an ERROR with a traceback): a scanner's or a misconfigured probe's, answered
    with the 400 page, worth a WARNING line, not an error to page someone for."""

    def filter(self, record: logging.LogRecord) -> bool:
        refused = record.exc_info[1] if record.exc_info else None
        if isinstance(refused, PermissionDenied | DisallowedHost):
            record.exc_info = record.exc_text = None
        if isinstance(refused, DisallowedHost) and record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def client_ip(request: HttpRequest) -> str | None:
    """The client's address. X-Forwarded-For is honoured only for the configured number
    of trusted proxies, counted from the right, so a client cannot forge its address."""
    address = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            address = hops[-proxies]
    return address if address and _is_ip(address) else None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


class IdleSessionMiddleware:
    """Sign people out after SESSION_COOKIE_AGE of inactivity, not after a fixed time.

    Renewing the expiry is a session write, so it happens at most every few minutes
    rather than on every request.
    """

    RENEW_AFTER_SECONDS = 300

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            if now - request.session.get("last_active", 0) >= self.RENEW_AFTER_SECONDS:
                request.session["last_active"] = now
        return self.get_response(request)


class HealthProbeMiddleware:
    """/healthz and /readyz answer any Host and plain HTTP: a container's health check
    asks http://127.0.0.1:8000 and a load balancer probes a target by its IP, neither
    with an allowed host name or through the TLS proxy. So these two paths, GET or HEAD
    only, are answered here, ahead of the host check and the HTTPS redirect (which the
    middleware below this one and request.get_host() do); every other URL keeps both.
    Neither answer says more than "ok" and which dependency is down."""

    PATHS = frozenset({"/healthz", "/readyz"})

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in self.PATHS or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        # The views named in urls.py, as the URL resolver finds them.
        response = resolve(request.path_info).func(request)
        response["X-Content-Type-Options"] = "nosniff"
        return response
