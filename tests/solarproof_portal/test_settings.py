"""Start-up refuses a number or a choice it cannot use, with a message naming the variable:
never a silent default, a timeout that never ends, or a crash on the first request.
The settings module is run afresh here for each environment (``manage.py check`` in a
process of its own, once per message shape: tests/customers/management/test_commands.py)."""

import runpy

import pytest
from django.core.exceptions import ImproperlyConfigured

import solarproof_portal.settings

BAD_NUMBERS = ["-1", "inf", "nan", "-inf", "12s", "1.5e400"]

# Settings where 0 has no meaning: each must refuse it too.
NO_ZERO = {
    "SOLARPROOF_TIMEOUT": ["12s", "8 seconds"],
    "OIDC_TIMEOUT": ["10s"],
    "OIDC_RENEW_SECONDS": ["15m"],
    "DJANGO_SESSION_IDLE_MINUTES": ["10h"],
    "AXES_FAILURE_LIMIT": ["5 tries"],
    "AXES_COOLOFF_MINUTES": ["30m"],
    "DATABASE_POOL_TIMEOUT": ["3s"],
}
# Settings where 0 means "off" or "none" (documented beside each): 0 starts.
ZERO_IS_OFF = {
    "LOOKUP_CACHE_SECONDS": ["60s", "1.5"],
    "AUDIT_RETENTION_DAYS": ["30d"],
    "AUDIT_CHECKPOINT_EVERY": ["1000x"],
    "AUDIT_CHECKPOINT_MINUTES": ["60m"],
    "AUDIT_ALERT_DISTINCT_PROJECTS_PER_HOUR": ["30/h"],
    "TRUSTED_PROXY_COUNT": ["one"],
    "DATABASE_CONN_MAX_AGE": ["60s"],
    "DATABASE_POOL_MAX": ["8 connections", "2.5"],
    "DATABASE_POOL_MIN": ["2x"],
    "DJANGO_HSTS_SECONDS": ["1y"],
    # 0 sends none (a pooler that refuses startup options); more than PostgreSQL takes is refused.
    "DATABASE_LOCK_TIMEOUT": ["5s", "5000ms", "1e7"],
}
FORMATS = {
    "LOOKUP_RATE_LIMIT": ["0/m", "-1/m", "inf/m", "nan/m", "60/0m", "60/-1m", "60", "60/minute", "60/m/s"],
    "AUDIT_BUSINESS_HOURS": ["0", "-1", "inf", "nan", "6am-8pm", "20:00-06:00", "06:00-25:00"],
}
CHOICES = {
    "LOOKUP_REASON": ["0", "-1", "inf", "nan", "always"],
    "LOCAL_LOGIN": ["0", "-1", "inf", "nan", "everyone"],
    "DJANGO_LOG_FORMAT": ["0", "-1", "inf", "nan", "xml"],
    "DJANGO_LOG_LEVEL": ["0", "-1", "inf", "nan", "loud"],
    "DJANGO_DEBUG": ["-1", "inf", "nan", "ture", "2"],
    "SOLARPROOF_DEMO": ["-1", "inf", "nan", "ture", "2"],
    "DJANGO_SECURE_SSL_REDIRECT": ["-1", "inf", "nan", "treu", "2"],
}


def _cases() -> list[tuple[str, str]]:
    cases = [(name, value) for name, units in NO_ZERO.items() for value in ["0", *BAD_NUMBERS, *units]]
    cases += [(name, value) for name, units in ZERO_IS_OFF.items() for value in [*BAD_NUMBERS, *units]]
    cases += [(name, value) for table in (FORMATS, CHOICES) for name, values in table.items() for value in values]
    return cases


def _start_up(monkeypatch, **environment: str) -> dict:
    """Run the settings module as start-up does, in this environment."""
    for name, value in {"DJANGO_DEBUG": "true", **environment}.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(solarproof_portal.settings.__file__)


@pytest.mark.parametrize(("name", "value"), _cases())
def test_start_up_refuses_a_value_it_cannot_use_naming_the_variable(monkeypatch, name, value):
    with pytest.raises(ImproperlyConfigured) as refused:
        _start_up(monkeypatch, **{name: value})
    assert str(refused.value).startswith(f"{name} must ")


@pytest.mark.parametrize("name", ZERO_IS_OFF)
def test_zero_starts_where_it_means_off(monkeypatch, name):
    _start_up(monkeypatch, **{name: "0"})


@pytest.mark.parametrize(
    ("environment", "setting", "expected"),
    [
        ({"SOLARPROOF_TIMEOUT": " 2.5 "}, "SOLARPROOF_TIMEOUT", 2.5),
        ({"OIDC_TIMEOUT": "0.5"}, "OIDC_TIMEOUT", 0.5),
        ({"LOOKUP_RATE_LIMIT": "10 / 5m"}, "LOOKUP_RATE_LIMIT", (10, 300)),
        ({"LOOKUP_RATE_LIMIT": "1/s"}, "LOOKUP_RATE_LIMIT", (1, 1)),
        ({"AXES_FAILURE_LIMIT": "1"}, "AXES_FAILURE_LIMIT", 1),
        ({"DJANGO_SESSION_IDLE_MINUTES": "1"}, "SESSION_COOKIE_AGE", 60),
        ({"DJANGO_SECURE_SSL_REDIRECT": "Yes"}, "SECURE_SSL_REDIRECT", True),
        ({"DJANGO_SECURE_SSL_REDIRECT": "0"}, "SECURE_SSL_REDIRECT", False),
        ({"DJANGO_LOG_LEVEL": "warning"}, "LOG_LEVEL", "WARNING"),
    ],
)
def test_start_up_reads_a_usable_value(monkeypatch, environment, setting, expected):
    assert _start_up(monkeypatch, **environment)[setting] == expected


POSTGRESQL = "postgres://portal@db.internal:5432/portal"


def test_postgresql_connections_come_from_a_pool_of_the_configured_size(monkeypatch):
    settings = _start_up(
        monkeypatch, DATABASE_URL=POSTGRESQL, DATABASE_POOL_MAX="12", DATABASE_POOL_MIN="3", DATABASE_POOL_TIMEOUT="1.5"
    )
    database = settings["DATABASES"]["default"]
    assert {key: database["OPTIONS"]["pool"][key] for key in ("min_size", "max_size", "timeout")} == {
        "min_size": 3,
        "max_size": 12,
        "timeout": 1.5,
    }
    assert database["CONN_MAX_AGE"] == 0  # Django refuses persistent connections with a pool


def test_the_pool_defaults_to_eight_connections_and_a_three_second_wait(monkeypatch):
    for name in ("DATABASE_POOL_MAX", "DATABASE_POOL_MIN", "DATABASE_POOL_TIMEOUT", "DATABASE_CONN_MAX_AGE"):
        monkeypatch.delenv(name, raising=False)
    pool = _start_up(monkeypatch, DATABASE_URL=POSTGRESQL)["DATABASES"]["default"]["OPTIONS"]["pool"]
    assert (pool["min_size"], pool["max_size"], pool["timeout"]) == (2, 8, 3.0)


def test_a_pool_of_zero_turns_it_off_for_persistent_connections(monkeypatch):
    monkeypatch.delenv("DATABASE_CONN_MAX_AGE", raising=False)
    database = _start_up(monkeypatch, DATABASE_URL=POSTGRESQL, DATABASE_POOL_MAX="0")["DATABASES"]["default"]
    assert "pool" not in database["OPTIONS"] and database["CONN_MAX_AGE"] == 60
    assert _start_up(monkeypatch, DATABASE_URL=POSTGRESQL, DATABASE_POOL_MAX="2")["DATABASE_POOL_MIN"] == 2


def test_the_owners_connection_for_migrations_is_never_pooled(monkeypatch):
    settings = _start_up(monkeypatch, DATABASE_URL=POSTGRESQL, DATABASE_OWNER_URL=POSTGRESQL)
    assert "pool" in settings["DATABASES"]["default"]["OPTIONS"]
    assert "pool" not in settings["DATABASES"]["owner"].get("OPTIONS", {})


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"DATABASE_CONN_MAX_AGE": "60"}, "DATABASE_CONN_MAX_AGE must be 0 with the connection pool"),
        ({"DATABASE_POOL_MAX": "4", "DATABASE_POOL_MIN": "5"}, "DATABASE_POOL_MIN must not be more than"),
        # One export streaming would hold the process's only connection: every other request waits.
        ({"DATABASE_POOL_MAX": "1"}, r"DATABASE_POOL_MAX must be 0 \(no pool\) or at least 2"),
    ],
)
def test_start_up_refuses_a_pool_it_cannot_make(monkeypatch, environment, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        _start_up(monkeypatch, DATABASE_URL=POSTGRESQL, **environment)


def test_postgresql_connections_give_up_waiting_for_a_lock_after_five_seconds_by_default(monkeypatch):
    monkeypatch.delenv("DATABASE_LOCK_TIMEOUT", raising=False)
    settings = _start_up(monkeypatch, DATABASE_URL=POSTGRESQL, DATABASE_OWNER_URL=POSTGRESQL)
    assert settings["DATABASE_LOCK_TIMEOUT"] == 5
    # The owner's too: migrate and prune run with DATABASE_URL set to it (deploy/container-steps.sh).
    for alias in ("default", "owner"):
        assert settings["DATABASES"][alias]["OPTIONS"]["options"] == "-c lock_timeout=5000ms"


@pytest.mark.parametrize(
    ("seconds", "sent"),
    [("2.5", "2500ms"), (" 30 ", "30000ms"), ("0.0001", "1ms"), ("2147483", "2147483000ms")],
)
def test_the_lock_timeout_is_sent_in_whole_milliseconds_never_rounded_down_to_no_limit(monkeypatch, seconds, sent):
    settings = _start_up(monkeypatch, DATABASE_URL=POSTGRESQL, DATABASE_LOCK_TIMEOUT=seconds)
    assert settings["DATABASES"]["default"]["OPTIONS"]["options"] == f"-c lock_timeout={sent}"


def test_the_lock_timeout_is_added_after_the_options_already_in_the_url_so_it_counts(monkeypatch):
    url = f"{POSTGRESQL}?options=-c%20search_path%3Dportal%20-c%20lock_timeout%3D0&sslmode=require"
    database = _start_up(monkeypatch, DATABASE_URL=url, DATABASE_LOCK_TIMEOUT="1")["DATABASES"]["default"]
    assert database["OPTIONS"]["options"] == "-c search_path=portal -c lock_timeout=0 -c lock_timeout=1000ms"
    assert database["OPTIONS"]["sslmode"] == "require"


def test_sqlite_has_no_lock_timeout_to_send_but_the_value_is_still_checked(monkeypatch):
    database = _start_up(monkeypatch, DATABASE_URL="sqlite:///portal.sqlite3")["DATABASES"]["default"]
    assert "options" not in database["OPTIONS"]
    with pytest.raises(ImproperlyConfigured, match=r"DATABASE_LOCK_TIMEOUT must be greater than zero \(or 0 for off\)"):
        _start_up(monkeypatch, DATABASE_URL="sqlite:///portal.sqlite3", DATABASE_LOCK_TIMEOUT="-1")


def test_a_lock_timeout_of_zero_sends_none_for_poolers_that_refuse_startup_options(monkeypatch):
    """PgBouncer refuses a connection that carries libpq options (FATAL: unsupported startup
    parameter: options): with 0 the portal sends none, and the role's own lock_timeout applies."""
    url = f"{POSTGRESQL}?options=-c%20search_path%3Dportal"
    settings = _start_up(monkeypatch, DATABASE_URL=POSTGRESQL, DATABASE_OWNER_URL=url, DATABASE_LOCK_TIMEOUT="0")
    assert "options" not in settings["DATABASES"]["default"]["OPTIONS"]
    assert settings["DATABASES"]["owner"]["OPTIONS"]["options"] == "-c search_path=portal"  # the URL's own, as given


def test_start_up_refuses_a_lock_timeout_postgresql_cannot_take(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_LOCK_TIMEOUT must be at most 2147483 seconds"):
        _start_up(monkeypatch, DATABASE_URL=POSTGRESQL, DATABASE_LOCK_TIMEOUT="2147484")


@pytest.mark.parametrize(
    ("environment", "exports"),
    [
        ({}, 2),
        ({"DATABASE_POOL_MAX": "12"}, 3),
        ({"DATABASE_POOL_MAX": "3", "DATABASE_POOL_MIN": "1"}, 1),
        ({"DATABASE_POOL_MAX": "2", "DATABASE_POOL_MIN": "1"}, 1),
        ({"DATABASE_POOL_MAX": "0", "DATABASE_POOL_MIN": "0"}, None),
    ],
)
def test_a_process_sends_a_quarter_of_its_pool_in_exports_at_once(monkeypatch, environment, exports):
    for name in ("DATABASE_POOL_MAX", "DATABASE_POOL_MIN", "DATABASE_CONN_MAX_AGE"):
        monkeypatch.delenv(name, raising=False)
    assert _start_up(monkeypatch, DATABASE_URL=POSTGRESQL, **environment)["HISTORY_EXPORTS_AT_ONCE"] == exports


def test_without_a_pool_exports_are_not_bounded(monkeypatch):
    assert _start_up(monkeypatch, DATABASE_URL="sqlite:///portal.sqlite3")["HISTORY_EXPORTS_AT_ONCE"] is None
