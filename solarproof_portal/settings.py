"""Settings for the Solar Proof staff portal.

Every value that differs between machines comes from the environment, read here and
nowhere else, through django-environ. A value that production needs and cannot
default safely stops start-up with a message that names the variable.
"""

import base64
import hashlib
import ipaddress
import math
import os
import re
from datetime import time, timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from solarproof_portal import budget

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A developer's checkout has a .env (written by make) that turns DEBUG on; values already
# in the environment win, and production images never contain the file.
environ.Env.read_env(BASE_DIR / ".env")


def _required(name: str, value: str, why: str) -> str:
    if not value:
        raise ImproperlyConfigured(f"{name} must be set {why}.")
    return value


def _rate(name: str, default: str) -> tuple[int, int]:
    """Parse a rate such as ``60/m`` into (requests, window in seconds)."""
    raw = env.str(name, default=default).strip()
    match = re.fullmatch(r"(\d+)\s*/\s*(\d*)\s*([smhd])", raw)
    # A window of 0 would divide by zero on every lookup.
    if not match or int(match[1]) < 1 or (match[2] and int(match[2]) < 1):
        raise ImproperlyConfigured(f"{name} must look like 60/m (count per s, m, h or d), not {raw!r}.")
    count, multiple, unit = int(match[1]), int(match[2] or 1), match[3]
    return count, multiple * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def _positive(name: str, default: float, *, zero_is_off: bool = False) -> float:
    try:
        # Not env.float: it drops what is not a digit, so "10s" read as 10 and "1e3" as 13.
        value = float(env.str(name, default=str(default)))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number of seconds.") from None
    if zero_is_off and value == 0:
        return 0.0
    if not 0 < value < math.inf:  # nan and inf too: a timeout of inf never times out
        raise ImproperlyConfigured(f"{name} must be greater than zero{' (or 0 for off)' if zero_is_off else ''}.")
    return value


def _hours(name: str, default: str) -> tuple[time, time]:
    """Parse office hours such as ``06:00-20:00`` into (start, end)."""
    raw = env.str(name, default=default).strip()
    match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})", raw)
    try:
        start, end = (time(int(match[1]), int(match[2])), time(int(match[3]), int(match[4]))) if match else (None, None)
    except ValueError:
        start = end = None
    if start is None or end is None or start >= end:
        raise ImproperlyConfigured(f"{name} must look like 06:00-20:00 (start before end), not {raw!r}.")
    return start, end


def _non_negative_int(name: str, default: int, *, least: int = 0) -> int:
    try:
        value = env.int(name, default=default)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number.") from None
    if value < 0:
        raise ImproperlyConfigured(f"{name} must not be negative.")
    if value < least:
        raise ImproperlyConfigured(f"{name} must be at least {least}.")
    return value


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def _flag(name: str, default: bool) -> bool:
    """true/false (yes/no, on/off, 1/0). django-environ reads anything else, a typo of
    "true" included, as false: for DJANGO_SECURE_SSL_REDIRECT that would be silent."""
    raw = env.str(name, default="").strip().lower()
    if not raw:
        return default
    if raw not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")
    return raw in _TRUE


DEBUG = _flag("DJANGO_DEBUG", default=False)


def _is_loopback(host: str) -> bool:
    try:
        return host.lower() == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# A development key is only acceptable while DEBUG is on; production must bring its own.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or ("django-insecure-development-only-key" if DEBUG else "")
_required("DJANGO_SECRET_KEY", SECRET_KEY, "when DJANGO_DEBUG is off")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# --- Solar Proof -------------------------------------------------------------------

SOLARPROOF_API_URL = env.str("SOLARPROOF_API_URL", default="https://solarproof.com.au/apidata.php")
_api = re.fullmatch(r"(https?)://([^/:?#@]+|\[[0-9a-fA-F:.]+\])(:\d+)?(/[^#]*)?", SOLARPROOF_API_URL)
# The query string carries the API key and the answer a customer's details: plain HTTP only
# to this machine (the sandbox, the tests), never across a network.
if not _api or (_api[1] == "http" and not _is_loopback(_api[2])):
    raise ImproperlyConfigured(
        f"SOLARPROOF_API_URL must be an https:// address (http:// only to this machine), not {SOLARPROOF_API_URL!r}."
    )
SOLARPROOF_API_KEY = env.str("SOLARPROOF_API_KEY", default="")
# Demo mode answers from the bundled sandbox instead of Solar Proof. It is the default
# for development; with DEBUG off it must be asked for, so a production machine with a
# forgotten key refuses to start instead of quietly showing made-up customers.
SOLARPROOF_DEMO = _flag("SOLARPROOF_DEMO", default=DEBUG and not SOLARPROOF_API_KEY)
if not SOLARPROOF_DEMO:
    _required("SOLARPROOF_API_KEY", SOLARPROOF_API_KEY, "(or SOLARPROOF_DEMO=true for demo data)")
try:
    SOLARPROOF_TIMEOUT = budget.solarproof_timeout(os.environ)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None

LOOKUP_CACHE_SECONDS = _non_negative_int("LOOKUP_CACHE_SECONDS", 60)
# When Solar Proof stops answering (customers/upstream/guard.py): calls in a row without
# an answer before its circuit opens, seconds between trial calls while it is open, and
# calls to it at once per process. Unset, the bulkhead leaves two of gunicorn's threads
# per process (GUNICORN_THREADS, which the portal's gunicorn worker sets to its own count)
# free of Solar Proof, for sign-in, history and the admin.
SOLARPROOF_CIRCUIT_FAILURES = _non_negative_int("SOLARPROOF_CIRCUIT_FAILURES", 5) or 5
SOLARPROOF_CIRCUIT_RESET_SECONDS = _positive("SOLARPROOF_CIRCUIT_RESET_SECONDS", 30)
# GUNICORN_THREADS' default (32) is gunicorn.conf.py's.
SOLARPROOF_MAX_CONCURRENT = _non_negative_int("SOLARPROOF_MAX_CONCURRENT", 0) or max(
    1, _non_negative_int("GUNICORN_THREADS", 32) - 2
)
# Threads per process that look up run sheets' projects, shared by every sheet
# (customers/run_sheets/service.py); they never open a database connection.
RUN_SHEET_THREADS = _non_negative_int("RUN_SHEET_THREADS", 0) or SOLARPROOF_MAX_CONCURRENT
# /metrics answers only with "Authorization: Bearer <METRICS_TOKEN>"; unset, it is a 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# When the cache stops answering (solarproof_portal/cache.py): the same two for Redis.
CACHE_CIRCUIT_FAILURES = _non_negative_int("CACHE_CIRCUIT_FAILURES", 3) or 3
CACHE_CIRCUIT_RESET_SECONDS = _positive("CACHE_CIRCUIT_RESET_SECONDS", 15)
LOOKUP_RATE_LIMIT = _rate("LOOKUP_RATE_LIMIT", "60/m")
# Sites whose links look a customer up in one tap; any other site's link gets a page with
# one "Look up" button first (customers/cross_site.py). Default: Solar Proof's own origin.
LOOKUP_LINK_ORIGINS = [
    origin.rstrip("/").lower()
    for origin in env.list("LOOKUP_LINK_ORIGINS", default=[f"{_api[1]}://{_api[2]}{_api[3] or ''}"])
    if origin.strip()
]
for _origin in LOOKUP_LINK_ORIGINS:
    if not re.fullmatch(r"https?://([^/:?#@\[\]]+|\[[0-9a-f:.]+\])(:\d+)?", _origin):
        raise ImproperlyConfigured(
            f"LOOKUP_LINK_ORIGINS must list origins like https://solarproof.com.au, not {_origin!r}."
        )

# --- Audit log ---------------------------------------------------------------------

# Days of lookup history kept by prune_audit_log; unset means prune refuses to guess.
AUDIT_RETENTION_DAYS = _non_negative_int("AUDIT_RETENTION_DAYS", 0) or None


def _audit_key(name: str, value: str) -> str:
    """A key as standard base64 of its 32 raw bytes (Ed25519 seed or public key)."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ImproperlyConfigured(
            f"{name} must be standard base64 of 32 bytes (python manage.py audit_keygen prints a new pair); "
            "an HMAC secret from before Ed25519 moves to AUDIT_LEGACY_HMAC_KEY."
        )
    return value.strip()


# Ed25519 private key (seed) that signs checkpoints and prune records; only its public
# half (AUDIT_VERIFY_KEYS) is needed to check them, so an auditor cannot forge. While
# DEBUG is on (make run, development) a key derived from the secret key is used, so the
# demo needs no setup; production must bring its own, from a secret store.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="") or (
    base64.b64encode(
        hashlib.sha256(b"solarproof-portal development audit key:" + SECRET_KEY.encode()).digest()
    ).decode()
    if DEBUG
    else ""
)
# Public keys accepted on statements, comma separated (old and new while rotating).
# Unset: the public half of AUDIT_SIGNING_KEY.
AUDIT_VERIFY_KEYS = [_audit_key("AUDIT_VERIFY_KEYS", key) for key in env.list("AUDIT_VERIFY_KEYS", default=[]) if key]
# An auditor's machine runs verify_audit_log with the public keys alone; the portal
# itself (wsgi.py) never starts without the private key.
if not AUDIT_VERIFY_KEYS:
    _required(
        "AUDIT_SIGNING_KEY",
        AUDIT_SIGNING_KEY,
        "when DJANGO_DEBUG is off (python manage.py audit_keygen prints a pair; "
        "an auditor's machine sets AUDIT_VERIFY_KEYS alone)",
    )
AUDIT_SIGNING_KEY = _audit_key("AUDIT_SIGNING_KEY", AUDIT_SIGNING_KEY) if AUDIT_SIGNING_KEY else ""
# The HMAC secret of statements signed before Ed25519, to check them; unset, the
# verifier names them as legacy and unchecked.
AUDIT_LEGACY_HMAC_KEY = env.str("AUDIT_LEGACY_HMAC_KEY", default="")
# Signed checkpoints of both chains' heads are appended here as JSON lines (and written
# to the solarproof_portal.audit log stream). Put it where the database's owner cannot
# write: another host's mount, an append-only file (chattr +a). Unset: the stream only.
AUDIT_CHECKPOINT_FILE = env.str("AUDIT_CHECKPOINT_FILE", default="")
# A checkpoint is taken after every N-th event (or review record) and, on the next
# write, once M minutes have passed since this process's last one. 0 turns either off.
AUDIT_CHECKPOINT_EVERY = _non_negative_int("AUDIT_CHECKPOINT_EVERY", 1000)
AUDIT_CHECKPOINT_MINUTES = _non_negative_int("AUDIT_CHECKPOINT_MINUTES", 60)
# Ask staff why they look a customer up: off, optional or required.
LOOKUP_REASON = env.str("LOOKUP_REASON", default="off").strip().lower()
if LOOKUP_REASON not in ("off", "optional", "required"):
    raise ImproperlyConfigured(f"LOOKUP_REASON must be off, optional or required, not {LOOKUP_REASON!r}.")
AUDIT_ALERT_DISTINCT_PROJECTS_PER_HOUR = _non_negative_int("AUDIT_ALERT_DISTINCT_PROJECTS_PER_HOUR", 30)
AUDIT_BUSINESS_HOURS = _hours("AUDIT_BUSINESS_HOURS", "06:00-20:00")
# The company's name at the head of a customer access report (a privacy request's answer).
COMPANY_NAME = env.str("COMPANY_NAME", default="").strip()

# How many reverse proxies in front of the portal append to X-Forwarded-For. With 0 the
# header is ignored, so a client cannot choose the address written to the audit log.
TRUSTED_PROXY_COUNT = _non_negative_int("TRUSTED_PROXY_COUNT", 0)

# --- Signing in --------------------------------------------------------------------

# OpenID Connect with the company's identity provider (Microsoft Entra ID, Google
# Workspace, ...). Unset: the sign-in page offers the username and password form only.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="").rstrip("/")
OIDC_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_BUTTON_LABEL = env.str("OIDC_BUTTON_LABEL", default="Sign in with your company account")
OIDC_ROLE_CLAIM = env.str("OIDC_ROLE_CLAIM", default="groups")
# "portal-sales=Sales,portal-admins=Admins": a value of the role claim, then the portal
# role it grants. Several values may grant the same role.
OIDC_ROLE_MAP = {key.strip(): role.strip() for key, role in env.dict("OIDC_ROLE_MAP", default={}).items()}
# How long a company sign-in is trusted before the provider is asked again, silently.
OIDC_RENEW_SECONDS = _non_negative_int("OIDC_RENEW_SECONDS", 15 * 60)
if OIDC_RENEW_SECONDS < 60:
    raise ImproperlyConfigured("OIDC_RENEW_SECONDS must be at least 60: each re-check is a trip to the provider.")
OIDC_TIMEOUT = _positive("OIDC_TIMEOUT", 10.0)
# Who people without a role should ask, shown on the page that turns them away.
PORTAL_ACCESS_CONTACT = env.str("PORTAL_ACCESS_CONTACT", default="your manager or a portal administrator")
OIDC_ORIGIN = ""
if OIDC_ISSUER:
    _required("OIDC_CLIENT_ID", OIDC_CLIENT_ID, "when OIDC_ISSUER is set")
    _required("OIDC_CLIENT_SECRET", OIDC_CLIENT_SECRET, "when OIDC_ISSUER is set")
    _issuer = re.fullmatch(r"(https?)://([^/:?#]+)(:\d+)?(/[^?#]*)?", OIDC_ISSUER)
    # Plain HTTP only to this machine (the tests' provider): tokens travel in that answer.
    if not _issuer or (_issuer[1] == "http" and not _is_loopback(_issuer[2])):
        raise ImproperlyConfigured(f"OIDC_ISSUER must be an https:// address, not {OIDC_ISSUER!r}.")
    OIDC_ORIGIN = f"{_issuer[1]}://{_issuer[2]}{_issuer[3] or ''}"
_unknown_roles = sorted(set(OIDC_ROLE_MAP.values()) - {"Sales", "Installers", "Admins"})
if _unknown_roles:
    raise ImproperlyConfigured(
        f"OIDC_ROLE_MAP may grant Sales, Installers or Admins, not {', '.join(map(repr, _unknown_roles))}."
    )
# Username and password: "all", or "superusers" to keep it only as the break-glass way in.
LOCAL_LOGIN = env.str("LOCAL_LOGIN", default="all")
if LOCAL_LOGIN not in ("all", "superusers"):
    raise ImproperlyConfigured(f"LOCAL_LOGIN must be all or superusers, not {LOCAL_LOGIN!r}.")
if LOCAL_LOGIN == "superusers" and not OIDC_ISSUER:
    raise ImproperlyConfigured("LOCAL_LOGIN=superusers needs OIDC_ISSUER: otherwise only superusers could sign in.")

# --- Django ------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    "accounts",
    "customers",
]

MIDDLEWARE = [
    "solarproof_portal.middleware.RequestIDMiddleware",
    # Before anything that checks the Host or redirects to HTTPS: health probes only.
    "solarproof_portal.middleware.HealthProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages go out gzipped (a result page: 8.7 KB -> 2.9 KB for an installer on mobile data).
    # Below whitenoise, which serves static files already compressed. BREACH: CSRF tokens
    # are masked afresh per response, Django pads each gzip body by a random length, and a
    # request from another site gets no customer data (customers/cross_site.py).
    "django.middleware.gzip.GZipMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, given the user that the session's one statement read (accounts/session_store.py).
    "accounts.middleware.AuthenticationMiddleware",
    "solarproof_portal.middleware.IdleSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After htmx's, so an expired company sign-in can answer htmx with HX-Redirect.
    "accounts.middleware.CompanySignInRenewalMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "solarproof_portal.urls"
WSGI_APPLICATION = "solarproof_portal.wsgi.application"

# The portal's own pages (templates/) are Jinja2: compiled once, they render in a fraction
# of the time Django's language takes to interpret them (issue 15). Helpers, filters and
# printing: solarproof_portal/jinja2.py. Django's language stays for the admin's and
# third-party apps' own templates. The Jinja2 backend adds request, csrf_input and
# csrf_token itself.
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {
            "environment": "solarproof_portal.jinja2.environment",
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "solarproof_portal.context_processors.portal",
            ],
        },
    },
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# PostgreSQL connections per process come from a pool (psycopg_pool, through Django): a
# request takes one when it first needs the database and gives it back when it ends, and
# a lookup gives it back while it waits on Solar Proof (solarproof_portal/database.py).
# So connections per process are bounded by DATABASE_POOL_MAX, however many threads wait;
# a request that finds none free within DATABASE_POOL_TIMEOUT gets the database-outage
# 503. DATABASE_POOL_MAX=0 turns the pool off: each thread keeps its own connection for
# DATABASE_CONN_MAX_AGE seconds, as before the pool. Sizing: docs/deployment.md.
DATABASE_POOL_MAX = _non_negative_int("DATABASE_POOL_MAX", 8)
DATABASE_POOL_MIN = _non_negative_int("DATABASE_POOL_MIN", min(2, DATABASE_POOL_MAX))
DATABASE_POOL_TIMEOUT = _positive("DATABASE_POOL_TIMEOUT", 3)
if DATABASE_POOL_MAX == 1:
    # One connection for a whole process: an export streaming, or a lookup writing its row,
    # would leave every other thread of the process waiting for it (then the outage 503).
    raise ImproperlyConfigured("DATABASE_POOL_MAX must be 0 (no pool) or at least 2.")
if DATABASE_POOL_MIN > DATABASE_POOL_MAX:
    raise ImproperlyConfigured(
        f"DATABASE_POOL_MIN must not be more than DATABASE_POOL_MAX ({DATABASE_POOL_MIN} > {DATABASE_POOL_MAX})."
    )
DATABASE_POOLED = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL_MAX > 0
# Django's pool needs CONN_MAX_AGE 0: the pool, not the thread, keeps the connection.
DATABASES["default"]["CONN_MAX_AGE"] = _non_negative_int("DATABASE_CONN_MAX_AGE", 0 if DATABASE_POOLED else 60)
if DATABASE_POOLED and DATABASES["default"]["CONN_MAX_AGE"]:
    raise ImproperlyConfigured(
        "DATABASE_CONN_MAX_AGE must be 0 with the connection pool (the pool keeps connections); "
        "DATABASE_POOL_MAX=0 turns the pool off."
    )
# Without the pool, a kept connection is checked before reuse; with it, the pool checks
# each connection as it hands it out (one empty round trip), so none dead from a restart
# of PostgreSQL reaches a request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers take the lock when their transaction begins, so audit appends queue up in
    # order instead of failing with "database is locked" halfway through. The test
    # database is a file so that threads in the tests share it.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters bound on the server, and a statement prepared once it has run five times
    # on a connection: PostgreSQL then plans each request's queries once per connection
    # (the permission query's planning was ten times its execution). Needs a direct
    # connection or a pooler that keeps prepared statements (docs/deployment.md).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 5})
    if DATABASE_POOLED:
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "name": "portal",
            "min_size": DATABASE_POOL_MIN,
            "max_size": DATABASE_POOL_MAX,
            "timeout": DATABASE_POOL_TIMEOUT,
            # A connection attempt that fails (PostgreSQL away) is retried with backoff for
            # this long, then dropped, so that the next request starts a fresh one at once.
            # psycopg_pool's default goes on for five minutes with ever longer waits between
            # attempts (1, 2, 4 ... 64 s): the portal could stay down for a minute after
            # PostgreSQL came back.
            "reconnect_timeout": DATABASE_POOL_TIMEOUT,
        }
# CSV exports of the history each hold a pooled connection for as long as the download
# lasts (a server-side cursor): so that slow downloads cannot take every connection of a
# worker from its lookups, a worker sends at most a quarter of its pool's connections'
# worth at once (2 of 8; at least one) and answers any more with a 503 to try again in a
# minute. Without the pool each thread has a connection of its own: no bound.
HISTORY_EXPORTS_AT_ONCE = max(1, DATABASE_POOL_MAX // 4) if DATABASE_POOLED else None
# The role that owns the tables: used by migrate, grant_app_privileges and prune_audit_log
# (deploy/container-steps.sh), never by the web server, whose DATABASE_URL role may only
# append to the audit log (customers/audit/database_roles.py). The start step unsets it before
# gunicorn starts.
if env.str("DATABASE_OWNER_URL", default=""):
    DATABASES["owner"] = {**env.db_url("DATABASE_OWNER_URL"), "CONN_MAX_AGE": 0}

# PostgreSQL: how long any statement of the portal waits for a lock before it fails. The
# audit chains' appends wait for a transaction-scoped advisory lock, which any session of
# the app's role (or the owner's) may take and keep: without a limit, every lookup of every
# process would wait behind it for ever, one thread after another. With it, such a lookup
# fails like any other audit write (the outage page, nothing shown) and the next one after
# the lock is free succeeds. Sent in the connection's startup packet (libpq's ``options``,
# after any in DATABASE_URL's own, so this one counts), so it costs no round trip; it covers
# every connection, the owner's too (migrate and prune run with DATABASE_URL set to the
# owner's URL): a migration waiting on a lock fails instead of queueing the portal behind it.
# 0: none sent, for a pooler that refuses connections carrying startup options (PgBouncer
# unless told to ignore them); then set lock_timeout on the database role instead.
DATABASE_LOCK_TIMEOUT = _positive("DATABASE_LOCK_TIMEOUT", 5, zero_is_off=True)
# PostgreSQL takes whole milliseconds, at most 2^31 - 1 of them, and reads 0 as no limit.
_LOCK_TIMEOUT_MS = math.ceil(DATABASE_LOCK_TIMEOUT * 1000)
if _LOCK_TIMEOUT_MS > 2**31 - 1:
    raise ImproperlyConfigured(f"DATABASE_LOCK_TIMEOUT must be at most {(2**31 - 1) // 1000} seconds.")


def _with_lock_timeout(database: dict) -> None:
    if database["ENGINE"] == "django.db.backends.postgresql" and _LOCK_TIMEOUT_MS:
        options = database.setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c lock_timeout={_LOCK_TIMEOUT_MS}ms".strip()


for _database in DATABASES.values():
    _with_lock_timeout(_database)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's, reusing one client per connection pool (solarproof_portal/cache.py).
            "BACKEND": "solarproof_portal.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "solarproof-portal",
            # A Redis outage must cost a lookup milliseconds, not the request: the
            # portal then skips the cache and limits locally.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First, so that a locked-out user or address is refused before any password check.
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.PasswordBackend",
    "accounts.backends.CompanyAccountBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "customers:search"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-au"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="Australia/Brisbane")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security headers and cookies ----------------------------------------------------

X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Behind the TLS-terminating proxy, which must set X-Forwarded-Proto itself.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _flag("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = _non_negative_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Signed out after a working day without activity (the expiry is renewed as people work).
SESSION_COOKIE_AGE = 60 * _non_negative_int("DJANGO_SESSION_IDLE_MINUTES", 10 * 60, least=1)
# In the database, read with the user and their permissions in one statement.
SESSION_ENGINE = "accounts.session_store"

# Same-origin scripts and styles only: every script is a file (htmx, django-htmx's debug
# script under DEBUG, portal.js), there is no inline script, and htmx is told not to
# inject its indicator styles.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "manifest-src": [SELF],
        # The run sheet's service worker (/run-sheet/sw.js), registered only on "Keep on
        # this device for today".
        "worker-src": [SELF],
        # Signing out of a company account continues, by redirect, to the provider's
        # sign-out page; browsers hold that redirect of a form post to form-action.
        "form-action": [SELF, *([OIDC_ORIGIN] if OIDC_ORIGIN else [])],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}
PERMISSIONS_POLICY = {
    "accelerometer": [],
    "camera": [],
    "geolocation": [],
    "gyroscope": [],
    "magnetometer": [],
    "microphone": [],
    "payment": [],
    "usb": [],
    "clipboard-write": ["self"],
}

# Sign-in protection: after repeated failures, lock that username at that address, the
# two together. Separately, an address lock would lock out everyone behind one proxy or
# office NAT after a few typos (every sign-in shares that address), and a username lock
# would let anyone lock out the break-glass superuser from anywhere. Repeated guessing
# from one address still locks each username it tries, there.
AXES_FAILURE_LIMIT = _non_negative_int("AXES_FAILURE_LIMIT", 5, least=1)
AXES_COOLOFF_TIME = timedelta(minutes=_non_negative_int("AXES_COOLOFF_MINUTES", 30, least=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "solarproof_portal.middleware.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_SENSITIVE_PARAMETERS = ["password"]

# JSON lines in production, one per event, each with the request ID; plain text while
# developing. Customers' details and the API key are never logged (tests check).
LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured("DJANGO_LOG_FORMAT must be json or plain.")
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO").strip().upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"DJANGO_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "solarproof_portal.middleware.RequestIDLogFilter"},
        "expected_refusal": {"()": "solarproof_portal.middleware.ExpectedRefusalLogFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "audit_line": {"format": "%(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
        # The audit event stream: each message is already one JSON line (customers/audit/stream.py).
        "audit": {"class": "logging.StreamHandler", "formatter": "audit_line"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Every lookup event, review record, checkpoint and prune, for a log shipper to
        # keep off the box. Not propagated: the line is the record, in either LOG_FORMAT.
        "solarproof_portal.audit": {"handlers": ["audit"], "level": "INFO", "propagate": False},
        # Django's own default adds a console handler to "django" while DEBUG is on, which
        # printed every line twice (once bare, once through ours): one handler, the root's.
        "django": {"handlers": [], "propagate": True},
        "django.request": {"filters": ["expected_refusal"]},
        "django.security.DisallowedHost": {"filters": ["expected_refusal"]},
        # urllib3 logs every request line at DEBUG; the query string carries the API key.
        "urllib3": {"level": "WARNING"},
        # Authlib logs the PKCE code verifier at DEBUG.
        "authlib": {"level": "WARNING"},
    },
}
