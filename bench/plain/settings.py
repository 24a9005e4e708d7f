"""The anchor: the version of the lookup a team would write in an afternoon.

Django's ``startproject`` middleware (security, sessions, common, CSRF, auth,
clickjacking), database sessions, ``login_required`` plus one group query, one
module-level ``requests.Session`` call to the upstream, ``r.json()``, one INSERT of an
audit row in a transaction, and one template with the customer's fields and
``tel:``/``mailto:`` links. No hash chain, CSP, rate limit, cache, presentation rules,
recent-lookups list or request IDs. Served by the portal's own gunicorn config against
the same database and upstream (bench/run.py); never part of the portal.

It shares the portal's database, so the portal's session cookie signs it in too (same
SECRET_KEY; bench/database.py copies the session row into Django's stock ``django_session``
table, which this version reads, from the portal's ``accounts_session``).
"""

import os

import environ

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.plain.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "bench.plain",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
# Persistent connections, as the portal has: the anchor should be a fair one, not a
# version that pays a new connection per request.
DATABASES = {"default": {**environ.Env.db_url_config(os.environ["DATABASE_URL"]), "CONN_MAX_AGE": 60}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The portal's sessions were made by its password backend; this is the same check.
AUTHENTICATION_BACKENDS = ["accounts.backends.PasswordBackend"]
LOCAL_LOGIN = "all"
USE_TZ = True
TIME_ZONE = "Australia/Brisbane"
LOGIN_URL = "/accounts/login/"
SOLARPROOF_API_URL = os.environ["SOLARPROOF_API_URL"]
SOLARPROOF_API_KEY = os.environ["SOLARPROOF_API_KEY"]
