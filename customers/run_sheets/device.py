"""A run sheet kept on a device for reading without signal: whose copy it is, and until when.

The copy belongs to the sign-in that kept it. Every page carries a marker of the current
sign-in (``keeper``, a keyed hash of the session key, which itself never leaves the
cookie); portal.js removes a kept copy whose marker is not the page's, so the next person
to sign in on the device, or the sign-in page after the session ended, removes it. Offline
nobody signs in, so the copy also stops at ``kept_until``: the portal's midnight (one time
zone for the whole portal, not the device's clock), or sooner when the session would end.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.utils import timezone
from django.utils.crypto import salted_hmac

_SALT = "customers.run_sheets.device.keeper"


def keeper(session: SessionBase | None) -> str:
    """This sign-in's marker; empty without one (the sign-in page)."""
    key = session.session_key if session is not None else None
    if not key:
        return ""
    return salted_hmac(_SALT, key, algorithm="sha256").hexdigest()[:32]


def kept_until(*, now: datetime | None = None) -> tuple[datetime, str]:
    """When a copy kept now must go, and why: ``"midnight"`` (the portal's) or ``"sign-in"``
    (the session ends first; keeping the sheet renews it, as any saved change does)."""
    now = now or timezone.now()
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(now) + timedelta(days=1), time.min))
    session_ends = now + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    return (midnight, "midnight") if midnight <= session_ends else (session_ends, "sign-in")
