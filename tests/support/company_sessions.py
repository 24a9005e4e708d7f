"""Company sign-in as a browser would do it against the tests' provider, and moving a
session's re-check clock."""

import time
from urllib.parse import urlparse

import requests

from accounts.session_store import SessionStore
from accounts.sessions import CHECKED_AT_KEY
from tests.support.pages import text


def expire_company_check(session_key: str) -> None:
    """As if OIDC_RENEW_SECONDS had passed since the provider last confirmed this session."""
    session = SessionStore(session_key=session_key)
    session[CHECKED_AT_KEY] = time.time() - 10_000
    session.save()


def provider_answer(location: str) -> str:
    """The browser's trip to the provider: where the provider sends it back to."""
    answer = requests.get(location, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = urlparse(answer.headers["Location"])
    assert back.netloc == "testserver"
    return f"{back.path}?{back.query}"


def sign_in(client, next_url: str = ""):
    """Click the button, let the provider approve, follow it back. Returns the callback's answer."""
    start = client.get("/accounts/oidc/start/" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302, text(start)
    return client.get(provider_answer(start["Location"]))


def signed_in_user(client):
    response = client.get("/")
    return response.wsgi_request.user if response.wsgi_request.user.is_authenticated else None


def expire_check(client) -> None:
    expire_company_check(client.cookies["sessionid"].value)
