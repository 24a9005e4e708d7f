"""Settings for checking a customer access report on an auditor's machine.

``manage.py verify_access_report FILE`` runs under these, never the portal's: they read
only ``AUDIT_VERIFY_KEYS`` (the portal's public keys, comma separated), so the check
needs no secret key, API key, database or demo flag, and trusts no key it was not
given (a development key derived from a well-known secret is never accepted here).
"""

import base64
import binascii

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

# Nothing is signed, served or stored here.
SECRET_KEY = ""
DEBUG = False
DATABASES: dict = {}
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "accounts", "customers"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"


def _public_key(text: str) -> str:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ImproperlyConfigured(
            f"AUDIT_VERIFY_KEYS must list the portal's public keys, each standard base64 of 32 bytes, not {text!r}."
        )
    return text.strip()


AUDIT_VERIFY_KEYS = [_public_key(key) for key in env.list("AUDIT_VERIFY_KEYS", default=[]) if key.strip()]
AUDIT_SIGNING_KEY = ""
AUDIT_LEGACY_HMAC_KEY = ""
