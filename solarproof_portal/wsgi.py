"""WSGI entry point, used by gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

from solarproof_portal.startup import load_settings_or_exit, require_signing_key_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "solarproof_portal.settings")
load_settings_or_exit()
require_signing_key_or_exit()
application = get_wsgi_application()
