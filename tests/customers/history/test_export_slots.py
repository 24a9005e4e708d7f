"""Slow CSV exports cannot take a worker's database connections from its lookups: each
export holds its pooled connection until its last byte is sent, so a process sends at
most settings.HISTORY_EXPORTS_AT_ONCE at once (a quarter of DATABASE_POOL_MAX) and turns
more away with a 503 and Retry-After. Over real HTTP (the live server, a thread per
request, closing each response as gunicorn does), with downloads held open mid-stream."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection
from django.test import Client

from customers.history import export
from customers.models import HistoryReview, LookupEvent
from solarproof_portal import database

pytestmark = pytest.mark.usefixtures("committed_db")

HEADERS = {"X-Forwarded-Proto": "https", "Accept-Encoding": "identity"}


@pytest.fixture
def portal(live_server, settings) -> str:
    settings.LOOKUP_RATE_LIMIT = (10_000, 60)
    if not database.pooled():
        # SQLite, or the pool off: no pool to protect, so no bound by default; the same
        # bound as a pool of eight, to test it here too.
        settings.HISTORY_EXPORTS_AT_ONCE = 2
    return live_server.url


def browser_of(user, portal: str) -> requests.Session:
    """A signed-in session over HTTP, as a script or a browser with the cookie has."""
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.headers.update(HEADERS)
    session.cookies.update({key: morsel.value for key, morsel in client.cookies.items()})
    session.get(portal)  # a request of its own first: the live server is up
    return session


@pytest.fixture
def paused_exports(monkeypatch) -> Iterator[threading.Event]:
    """Every export sends its header line, then waits (as for a slow download) until the
    returned gate opens; the rest is the real export."""
    gate = threading.Event()
    real = export.export_csv

    def slow(events):
        chunks = real(events)
        yield next(chunks)
        gate.wait(30)
        yield from chunks

    monkeypatch.setattr(export, "export_csv", slow)
    yield gate
    gate.set()


def held_connections() -> int | None:
    if not database.pooled():
        return None
    stats = connection.pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


def test_exports_beyond_the_bound_are_turned_away_and_lookups_keep_their_connections(
    portal, settings, admin_user_role, sales_user, paused_exports
):
    bound = settings.HISTORY_EXPORTS_AT_ONCE
    assert bound == (max(1, settings.DATABASE_POOL_MAX // 4) if database.pooled() else 2)
    admin = browser_of(admin_user_role, portal)
    sales = browser_of(sales_user, portal)
    assert sales.get(f"{portal}/projects/2143/", timeout=30).status_code == 200  # a row to export
    connection.close()  # this thread's connection back to the pool
    before = held_connections()

    # As many slow downloads at once as the pool has connections: the first `bound` are
    # being sent (each has its first line out and waits), the rest are turned away.
    attempts = [admin.get(f"{portal}/history/export.csv", stream=True, timeout=30) for _ in range(8)]
    # Only admins are told even that: the role is checked first.
    assert sales.get(f"{portal}/history/export.csv", timeout=30).status_code == 403

    # Meanwhile lookups are served, several at once, within the pool's wait.
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda n: sales.get(f"{portal}/projects/{n}/", timeout=30), range(1001, 1007)))
    assert [answer.status_code for answer in answers] == [200] * 6

    assert [attempt.status_code for attempt in attempts] == [200] * bound + [503] * (8 - bound)
    downloads, turned_away = attempts[:bound], attempts[bound:]
    for download in downloads:
        # Line by line, not requests' iter_lines, which waits for a whole chunk of 512 bytes.
        assert download.raw.readline().startswith(b"sequence,time,username,project_id")
    assert export.sending() == bound
    if before is not None:
        assert held_connections() == before + bound  # the downloads', and no more
    for refused in turned_away:
        assert refused.headers["Retry-After"] == "60" and refused.headers["Cache-Control"] == "no-store"
        assert refused.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert refused.text == (
            f"Cannot export now: this server is already sending {bound} exports of the lookup history, the most "
            "it sends at once so that lookups keep their database connections. Try again in a minute.\n"
        )

    paused_exports.set()
    for download in downloads:
        rows = download.raw.read().splitlines()
        assert len(rows) == 1 and rows[0].split(b",")[3] == b"2143"  # the rest of the file: one lookup
        download.close()
    assert HistoryReview.objects.filter(kind="export").count() == bound  # the refused read nothing

    _until(lambda: export.sending() == 0, "the finished downloads gave their slots back")
    after = admin.get(f"{portal}/history/export.csv", timeout=30)
    assert after.status_code == 200 and after.text.count("\n") == 1 + LookupEvent.objects.count()


def test_an_export_that_fails_before_it_streams_gives_its_slot_back(portal, settings, admin_user_role, monkeypatch):
    settings.HISTORY_EXPORTS_AT_ONCE = 1
    admin = browser_of(admin_user_role, portal)

    def broken(filters):
        raise RuntimeError("a bug in the snapshot")

    monkeypatch.setattr(export, "export_snapshot", broken)
    assert admin.get(f"{portal}/history/export.csv", timeout=30).status_code == 500
    monkeypatch.undo()
    assert export.sending() == 0
    assert admin.get(f"{portal}/history/export.csv", timeout=30).status_code == 200


def test_an_export_turned_away_is_one_info_line_not_an_error(settings, admin_user_role, caplog):
    settings.HISTORY_EXPORTS_AT_ONCE = 1
    release = export.take_slot()  # another download is being sent
    try:
        client = Client(HTTP_X_FORWARDED_PROTO="https")
        client.force_login(admin_user_role)
        with caplog.at_level("INFO"):
            busy = client.get("/history/export.csv")
    finally:
        release()
    assert busy.status_code == 503 and busy["Retry-After"] == "60"
    assert busy.content.decode().startswith("Cannot export now")
    assert [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.levelno >= logging.INFO and "export" in r.getMessage()
    ] == [("INFO", "History export turned away: this process is sending 1 already")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_slot_is_given_back_once_however_often_it_is_released(settings):
    settings.HISTORY_EXPORTS_AT_ONCE = 1
    release = export.take_slot()
    assert release is not None and export.take_slot() is None
    release()
    release()
    assert export.sending() == 0
    again = export.take_slot()
    assert again is not None and export.take_slot() is None
    again()


def test_a_response_dropped_without_being_closed_gives_its_slot_back_when_collected(settings):
    settings.HISTORY_EXPORTS_AT_ONCE = 1
    chunks = export.HeldWhileSent(iter(["a"]), export.take_slot())
    assert export.sending() == 1
    del chunks
    assert export.sending() == 0


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
