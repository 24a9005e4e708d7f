"""PostgreSQL: no lookup waits for ever on a lock (DATABASE_LOCK_TIMEOUT). The audit
chains' appends take an advisory lock any session of the app's role may take and keep;
a lookup that cannot get it in time is withheld like any other failed audit write, and
the next one after the lock is free is served. PostgreSQL only: SQLite has its own
timeout (20 s, settings) on its write lock."""

from __future__ import annotations

import logging
import runpy
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection, connections
from django.test import Client

import solarproof_portal.settings
from customers.audit import heads
from customers.models import HistoryReview, LookupEvent
from tests.support.pages import text

pytestmark = pytest.mark.usefixtures("committed_db")

# The longest a request in these tests may take before the test calls it hung.
HUNG = 20


@pytest.fixture(autouse=True)
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the lock timeout is PostgreSQL's (DATABASE_URL)")


@pytest.fixture
def outsider() -> Iterator[psycopg.Connection]:
    """A session of its own, as anyone with the app's role (or the owner's) may open."""
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context", "options"):
        params.pop(key, None)
    with psycopg.connect(**params, autocommit=True) as conn:
        yield conn


@pytest.fixture
def lock_timeout(monkeypatch) -> Iterator[Callable[[str], None]]:
    """The process's connections remade with the options start-up makes of
    DATABASE_LOCK_TIMEOUT=<seconds> (the settings module run afresh in this environment,
    as tests/solarproof_portal/test_settings.py does): a short wait, by the code that
    makes the real one. The configured connections are back afterwards."""
    options = connection.settings_dict["OPTIONS"]
    configured = dict(options)

    def remake() -> None:
        connections.close_all()
        connection.close_pool()

    def make(seconds: str) -> None:
        monkeypatch.setenv("DJANGO_DEBUG", "true")
        monkeypatch.setenv("DATABASE_LOCK_TIMEOUT", seconds)
        started = runpy.run_path(solarproof_portal.settings.__file__)
        remake()
        options.pop("options", None)
        if "options" in (made := started["DATABASES"]["default"]["OPTIONS"]):
            options["options"] = made["options"]

    yield make
    remake()
    options.clear()
    options.update(configured)


def holding(outsider: psycopg.Connection, key: int, how: str) -> Callable[[], None]:
    """``outsider`` takes the lock ``key``: for its session (no transaction open), or in a
    transaction it leaves idle. Returns what lets it go."""
    if how == "session":
        outsider.execute("SELECT pg_advisory_lock(%s)", [key])
        return lambda: outsider.execute("SELECT pg_advisory_unlock(%s)", [key])
    outsider.execute("BEGIN")
    outsider.execute("SELECT pg_advisory_xact_lock(%s)", [key])
    return lambda: outsider.execute("ROLLBACK")


def answered_within(request: Callable[[], object], release: Callable[[], None]) -> tuple[object, float]:
    """The response and how long it took; a request still waiting after HUNG seconds fails
    the test (after the lock is let go, so that its thread ends)."""
    answers: list = []
    thread = threading.Thread(target=lambda: (answers.append(request()), connections.close_all()))
    started = time.monotonic()
    thread.start()
    try:
        thread.join(HUNG)
        took = time.monotonic() - started
        assert not thread.is_alive(), f"the request still waited for the lock after {HUNG} s"
    finally:
        release()
        thread.join(HUNG)
    return answers[0], took


def signed_in(user) -> Client:
    client = Client(raise_request_exception=False, HTTP_X_FORWARDED_PROTO="https")
    client.force_login(user)
    return client


def test_the_portals_connections_wait_for_a_lock_no_longer_than_the_setting():
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting, unit FROM pg_settings WHERE name = 'lock_timeout'")
        setting, unit = cursor.fetchone()
    assert unit == "ms"
    assert int(setting) == round(django_settings.DATABASE_LOCK_TIMEOUT * 1000) > 0


@pytest.mark.parametrize("how", ["session", "idle-in-transaction"])
def test_a_lookup_that_cannot_get_the_chains_lock_in_time_is_withheld_and_the_next_one_is_served(
    sales_user, outsider, lock_timeout, caplog, how
):
    lock_timeout("0.5")
    client = signed_in(sales_user)
    release = holding(outsider, heads.LOOKUP_LOCK_KEY, how)
    with caplog.at_level(logging.INFO):
        refused, took = answered_within(lambda: client.get("/projects/2143/"), release)

    assert refused.status_code == 503
    assert "The lookup could not be recorded, so it is not shown." in text(refused)
    assert "Judy" not in refused.content.decode() and "Matherson" not in refused.content.decode()
    assert 0.5 <= took < 5
    assert not LookupEvent.objects.exists()
    withheld = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Audit write failed")]
    assert withheld == [
        "Audit write failed (OperationalError: lock timeout, another session holds the lock; see pg_locks); "
        "withholding the lookup of project=2143"
    ]

    served = client.get("/projects/2143/")
    assert served.status_code == 200 and "Judy Matherson" in text(served)
    assert list(LookupEvent.objects.values_list("project_id", "outcome")) == [(2143, "found")]


@pytest.mark.parametrize("page", ["/history/", "/history/export.csv"])
def test_a_read_of_the_log_that_cannot_get_the_review_chains_lock_in_time_shows_nothing_and_the_next_one_is_served(
    admin_user_role, outsider, lock_timeout, caplog, page
):
    lock_timeout("0.5")
    client = signed_in(admin_user_role)
    assert client.get("/projects/2143/").status_code == 200  # one row for the history to show
    release = holding(outsider, heads.REVIEW_LOCK_KEY, "session")
    refused, took = answered_within(lambda: client.get(page), release)

    assert refused.status_code == 503 and refused["Retry-After"] == "30"
    assert "The portal is temporarily unavailable" in text(refused)
    assert "ada.admin" not in text(refused) and "2143" not in text(refused)
    assert 0.5 <= took < 5
    assert not HistoryReview.objects.exists()
    assert "Database unavailable: OperationalError: lock timeout, another session holds the lock; see pg_locks" in [
        r.getMessage() for r in caplog.records
    ]

    served = client.get(page)
    body = b"".join(served.streaming_content) if served.streaming else served.content
    assert served.status_code == 200 and b"2143" in body
    assert HistoryReview.objects.count() == 1
