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
    from customers.models import LookupEvent, LookupEventManager

    def _not_recorded(self, **fields):  # type: ignore[no-untyped-def]
        return LookupEvent(sequence=0, prev_hash="", hash="", username=fields["user"].get_username())

    LookupEventManager.record = _not_recorded  # type: ignore[method-assign]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
