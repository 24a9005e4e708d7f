"""Moving a company sign-in's clock, for the re-check tests."""

import time

from django.contrib.sessions.backends.db import SessionStore

from accounts.sessions import CHECKED_AT_KEY


def expire_company_check(session_key: str) -> None:
    """As if OIDC_RENEW_SECONDS had passed since the provider last confirmed this session."""
    session = SessionStore(session_key=session_key)
    session[CHECKED_AT_KEY] = time.time() - 10_000
    session.save()
