"""The portal's own WSGI application plus one anchor: /bench/bare/, a bare Django view
returning a short HTML string through the same settings, middleware and gunicorn config.
BENCH_SKIP_AUDIT=1 replaces the audit write with a no-op, to price the audit write; it
exists here only, never in the portal."""

import os

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "solarproof_portal.settings")
django.setup()
settings.ROOT_URLCONF = "bench.urls"

if os.environ.get("BENCH_SKIP_AUDIT") == "1":
    from customers.audit import log as audit_log
    from customers.models import LookupEvent

    def _not_recorded(**fields):  # type: ignore[no-untyped-def]
        return LookupEvent(sequence=0, prev_hash="", hash="", username=fields["user"].get_username())

    audit_log.record_lookup = _not_recorded

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
