"""The afternoon version's WSGI application (bench/plain/settings.py), served by the
portal's gunicorn config."""

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.plain.settings"
application = get_wsgi_application()
