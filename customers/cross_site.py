"""Was this request started by another site? Then it must not look a customer up.

Lookups are GETs and the session cookie is ``SameSite=Lax``, so without this any page or
email could make a signed-in member of staff look a customer up, audited in their name
and counted against their rate limit. Views that would look someone up ask
``is_cross_site(request)`` first and, when it says yes, show ``confirmation`` instead: the
project ID and one "Look up" button, no upstream call, no audit row.

What counts as cross-site:

- ``Sec-Fetch-Site: cross-site`` (every current browser sends fetch metadata).
- ``Sec-Fetch-Site: same-site`` too. "Same site" is any host under the same registrable
  domain: for ``portal.example.com.au`` that is the marketing site, the wiki, a
  user-content or staging host. None of those is the portal, and a link on them should
  not spend a lookup in someone's name, so only ``same-origin`` counts as the portal.
- With no fetch metadata (older browsers), a ``Referer`` from another origin.

What does not: ``Sec-Fetch-Site: none`` (typed, bookmarked, opened from the home screen),
``same-origin`` (the portal's own pages), and a request with neither fetch metadata nor a
``Referer`` (scripts, monitoring, the command line). A link from an origin listed in
``LOOKUP_LINK_ORIGINS`` (default: Solar Proof's, the origin of ``SOLARPROOF_API_URL``) is
not cross-site either, so a link in Solar Proof reaches the customer in one tap. That
needs the ``Referer`` (browsers send the origin by default); if Solar Proof sends none,
its links get the one-tap confirmation like any other site's.

Pages that read the audit log (history, its export, the review record, the customer
access report) are guarded the same way with ``@confirm_cross_site(what)``: another
site's link to ``/history/export.csv`` must not download the log through an admin's
browser, nor write a review in their name. There ``LOOKUP_LINK_ORIGINS`` earn nothing:
Solar Proof links to its projects' customers, never to the portal's log.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_PORTAL = {"same-origin", "none"}
_VOUCHED = "cross_site_vouched"
_FROM_ELSEWHERE = "cross_site_next"


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, lower case, without a default
    port; None for anything else (a Referer that is not a URL counts as foreign)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and str(port) != _DEFAULT_PORTS[parts.scheme] else "")


def vouch_for(request: HttpRequest, url: str) -> None:
    """The portal itself is about to redirect to ``url`` by way of another site (the
    company sign-in's provider), on behalf of a request that was not cross-site: that one
    arrival at ``url`` is the portal's own."""
    request.session[_VOUCHED] = url


def remember_sign_in_from_elsewhere(request: HttpRequest, next_url: str) -> None:
    """The sign-in page was opened by another site's link (a signed-out member of staff
    following it): where it leads once they sign in is that site's request, not theirs."""
    request.session[_FROM_ELSEWHERE] = next_url


def sign_in_from_elsewhere(request: HttpRequest, next_url: str) -> bool:
    session = getattr(request, "session", None)
    return session is not None and session.get(_FROM_ELSEWHERE) == next_url


def pass_on_vouch(request: HttpRequest, url: str) -> None:
    """A vouched-for URL that only redirects (the plain search form) hands the vouch on."""
    session = getattr(request, "session", None)
    if session is not None and session.get(_VOUCHED) == request.get_full_path():
        session[_VOUCHED] = url


def is_cross_site(request: HttpRequest, *, trust_link_origins: bool = True) -> bool:
    """True when another site (not the portal, not a trusted link origin) started this request.
    A URL the portal vouched for counts as the portal's own, once; the first arrival at a
    sign-in's destination counts as the other site's when that sign-in page was its link's.
    ``trust_link_origins=False``: a link from ``LOOKUP_LINK_ORIGINS`` is another site's too
    (they are trusted to link to a customer, not to read or export the log)."""
    session = getattr(request, "session", None)
    if session is not None and _FROM_ELSEWHERE in session and session[_FROM_ELSEWHERE] == request.get_full_path():
        del session[_FROM_ELSEWHERE]
        return True
    if session is not None and _VOUCHED in session and session[_VOUCHED] == request.get_full_path():
        del session[_VOUCHED]
        return False
    referer = request.headers.get("Referer", "")
    referer_origin = origin_of(referer) if referer else None
    if trust_link_origins and referer_origin and referer_origin in settings.LOOKUP_LINK_ORIGINS:
        return False
    fetch_site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if fetch_site:
        return fetch_site not in _PORTAL
    if not referer:
        return False
    return referer_origin != origin_of(request.build_absolute_uri("/"))


def confirmation(request: HttpRequest, *, project_ids: list[int] | None = None, what: str = "customer") -> HttpResponse:
    """The page shown instead of a lookup (or a read of the log) another site asked for. Its
    one button asks for the same URL again, now from the portal itself (``same-origin``),
    so it goes ahead."""
    project_ids = project_ids or []
    title = f"Project {', '.join(map(str, project_ids))}" if project_ids else what[:1].upper() + what[1:]
    context = {"project_ids": project_ids, "what": what, "title": title, "again": request.get_full_path()}
    response = render(request, "customers/confirm_lookup.html", context)
    add_never_cache_headers(response)
    return response


View = Callable[..., HttpResponse]


def confirm_cross_site(what: str) -> Callable[[View], View]:
    """Decorate a view that reads or exports what the audit log holds: when another site
    started the request, the view does not run (nothing read, exported or recorded) and the
    one-button confirmation names ``what`` instead (a trusted link origin's link too).
    ``what`` may name the URL's keyword arguments, ``"access report for customer
    {customer_id}"``. Put it below the sign-in and role checks, so a signed-out visitor
    signs in first and someone without the role is refused rather than asked."""

    def decorator(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if is_cross_site(request, trust_link_origins=False):
                return confirmation(request, what=what.format(**kwargs))
            return view(request, *args, **kwargs)

        return guarded

    return decorator
