"""Fail fast, in one line, when the environment cannot run the portal."""

import sys

from django.core.exceptions import ImproperlyConfigured


def load_settings_or_exit() -> None:
    """Import the settings now, so a missing variable stops start-up with its name
    rather than a traceback from deep inside the first request."""
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - touching it imports the module
    except ImproperlyConfigured as exc:
        sys.exit(f"solarproof-portal: configuration error: {exc}")


def require_signing_key_or_exit() -> None:
    """The portal signs its audit checkpoints as it serves: it does not start with only
    the public keys an auditor's machine holds."""
    from django.conf import settings

    if not settings.AUDIT_SIGNING_KEY:
        sys.exit("solarproof-portal: configuration error: AUDIT_SIGNING_KEY must be set to serve the portal.")
