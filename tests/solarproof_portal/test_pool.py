"""The PostgreSQL connection pool (solarproof_portal/database.py): a lookup holds no
connection while it waits on Solar Proof, a pool with no connection free is the outage
503, and a forked process makes its own pool without touching its parent's connections.
PostgreSQL only: SQLite has no pool."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, connections, transaction
from django.test import Client

from customers.lookups import _client, look_up_customer, look_up_customers
from customers.models import LookupEvent
from customers.run_sheets.service import sheet_pool
from solarproof_portal import database
from tests.support.pages import text

pytestmark = pytest.mark.usefixtures("committed_db")


@pytest.fixture(autouse=True)
def postgresql_pool():
    if connection.vendor != "postgresql" or not database.pooled():
        pytest.skip("the connection pool is PostgreSQL's (DATABASE_URL), on unless DATABASE_POOL_MAX=0")


@pytest.fixture
def small_pool() -> Iterator[Callable[..., object]]:
    """Replace the process's pool by a smaller one (Django makes it from the settings at
    first use); the configured one is back afterwards."""
    options = connection.settings_dict["OPTIONS"]
    configured = options["pool"]

    def make(**sizes: object) -> object:
        connections.close_all()
        connection.close_pool()
        options["pool"] = {**configured, **sizes}
        return connection.pool

    yield make
    connections.close_all()
    connection.close_pool()
    options["pool"] = configured


def held(pool) -> int:
    """Connections the pool has handed out and not had back."""
    stats = pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


@pytest.fixture
def gated_upstream(portal_upstream, monkeypatch):
    """Solar Proof answers only once the test opens the gate: every lookup sent is in
    flight at once, for as long as the test looks."""
    gate = threading.Event()
    answering = portal_upstream.answering
    at_gate = threading.Lock()
    # Only this test's requests: the shared sandbox may still be answering one that an
    # earlier test gave up on, which its own in-flight count includes.
    waiting = {"now": 0, "most": 0}

    @contextmanager
    def held_at_gate() -> Iterator[None]:
        with answering():
            with at_gate:
                waiting["now"] += 1
                waiting["most"] = max(waiting["most"], waiting["now"])
            try:
                gate.wait(30)
            finally:
                with at_gate:
                    waiting["now"] -= 1
            yield

    monkeypatch.setattr(portal_upstream, "answering", held_at_gate)
    monkeypatch.setattr(portal_upstream, "most_at_gate", lambda: waiting["most"], raising=False)
    yield portal_upstream, gate
    gate.set()


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def in_thread(work: Callable[[], object], results: list, errors: list) -> threading.Thread:
    def run() -> None:
        try:
            results.append(work())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_lookups_waiting_on_solar_proof_hold_no_connection_so_more_than_the_pool_all_succeed(
    make_user, small_pool, gated_upstream
):
    upstream, gate = gated_upstream
    users = [make_user(f"waiter{index}", "Sales") for index in range(6)]
    pool = small_pool(min_size=1, max_size=2)

    def look_up(user_pk: int, project_id: int) -> object:
        # As a request does: the session's read takes a connection before the lookup.
        user = get_user_model().objects.get(pk=user_pk)
        return look_up_customer(user=user, project_id=project_id)

    results: list = []
    errors: list = []
    threads = [
        in_thread(lambda pk=user.pk, project=1001 + index: look_up(pk, project), results, errors)
        for index, user in enumerate(users)
    ]
    wait_until(lambda: upstream.most_at_gate() == 6 or errors, "six lookups in flight at once")
    stats = pool.get_stats()
    gate.set()
    for thread in threads:
        thread.join(30)
    assert not errors
    # Six lookups waited on Solar Proof together with a pool of two, and none held one.
    assert stats["pool_size"] - stats["pool_available"] == 0 and stats["requests_waiting"] == 0
    assert sorted(result.outcome for result in results) == ["found"] * 6
    assert LookupEvent.objects.filter(outcome="found").count() == 6
    assert pool.get_stats()["pool_size"] <= 2


def test_a_run_sheets_request_holds_no_connection_while_its_jobs_wait(installer_user, small_pool, gated_upstream):
    upstream, gate = gated_upstream
    pool = small_pool(min_size=1, max_size=2)
    projects = [2143, 2144, 2145]

    def run_sheet() -> object:
        user = get_user_model().objects.get(pk=installer_user.pk)
        return look_up_customers(user=user, project_ids=projects, pool=sheet_pool(), request_id="sheet-wait")

    results: list = []
    errors: list = []
    thread = in_thread(run_sheet, results, errors)
    wait_until(lambda: upstream.most_at_gate() == len(projects) or errors, "the sheet's jobs in flight")
    holding = held(pool)
    gate.set()
    thread.join(30)
    assert not errors and holding == 0
    assert [answer.outcome for answer in results[0]] == ["found"] * 3
    assert LookupEvent.objects.filter(request_id="sheet-wait").count() == 3


def test_the_audit_row_is_committed_before_the_customer_is_returned(sales_user):
    result = look_up_customer(user=sales_user, project_id=2143)
    assert result.found
    seen: list = []
    # Another thread, so another connection: it sees only what is committed.
    in_thread(lambda: LookupEvent.objects.filter(pk=result.event.pk, outcome="found").exists(), seen, []).join(10)
    assert seen == [True]


def test_a_connection_inside_a_transaction_is_never_given_back(sales_user):
    with transaction.atomic():
        LookupEvent.objects.exists()
        kept = connection.connection
        assert database.release_while_waiting() is False
        assert connection.connection is kept
    assert database.release_while_waiting() is True
    assert connection.connection is None


def test_a_request_that_finds_no_connection_free_gets_the_outage_page_and_the_next_one_is_served(
    sales_user, small_pool
):
    small_pool(min_size=1, max_size=1, timeout=0.5)
    client = Client(raise_request_exception=False, HTTP_X_FORWARDED_PROTO="https")
    client.force_login(sales_user)
    connection.close()  # this thread's connection back to the pool: its only one
    taken = threading.Event()
    done = threading.Event()

    def hold_the_only_connection() -> None:
        with transaction.atomic():
            LookupEvent.objects.exists()
            taken.set()
            done.wait(30)

    errors: list = []
    holder = in_thread(hold_the_only_connection, [], errors)
    assert taken.wait(10)
    try:
        refused = client.get("/projects/2143/")
    finally:
        done.set()
        holder.join(10)
    assert refused.status_code == 503 and refused["Retry-After"] == "30"
    assert "The portal is temporarily unavailable" in text(refused)
    assert "Judy" not in refused.content.decode()
    served = client.get("/projects/2143/")
    assert served.status_code == 200 and "Judy Matherson" in text(served)
    assert not errors


def test_sign_out_and_a_removed_role_count_on_the_very_next_lookup(sales_user):
    client = Client(HTTP_X_FORWARDED_PROTO="https")
    client.force_login(sales_user)
    assert client.get("/projects/2143/").status_code == 200
    sales_user.groups.remove(Group.objects.get(name="Sales"))
    assert client.get("/projects/2144/").status_code == 403
    sales_user.groups.add(Group.objects.get(name="Sales"))
    assert client.get("/projects/2144/").status_code == 200
    client.post("/accounts/logout/")
    signed_out = client.get("/projects/2145/")
    assert signed_out.status_code == 302 and signed_out["Location"].startswith("/accounts/login")
    assert list(LookupEvent.objects.order_by("sequence").values_list("project_id", "outcome")) == [
        (2143, "found"),
        (2144, "not_authorised"),
        (2144, "found"),
    ]


def _look_up_in_child(user_pk: int, project_id: int) -> None:
    _client.cache_clear()
    user = get_user_model().objects.get(pk=user_pk)
    assert look_up_customer(user=user, project_id=project_id).found
    connections.close_all()


def test_a_forked_process_makes_its_own_pool_and_leaves_its_parents_connection_alone(sales_user):
    # The parent holds a connection from its pool, with the pool's threads running.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        parent_backend = cursor.fetchone()[0]
    parent_pool = connection.pool
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_look_up_in_child, args=(sales_user.pk, 2143 + index)) for index in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    hung = [child for child in children if child.is_alive()]
    for child in hung:
        child.kill()
    assert not hung and [child.exitcode for child in children] == [0, 0]
    # The parent's connection is still its own, on the same server process, and works.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] == parent_backend
    assert connection.pool is parent_pool
    assert sorted(LookupEvent.objects.values_list("project_id", flat=True)) == [2143, 2144]


def test_the_settings_give_django_the_pool_and_no_persistent_connections():
    options = django_settings.DATABASES["default"]["OPTIONS"]["pool"]
    assert options["max_size"] == django_settings.DATABASE_POOL_MAX
    assert options["min_size"] == django_settings.DATABASE_POOL_MIN
    assert options["timeout"] == django_settings.DATABASE_POOL_TIMEOUT
    assert django_settings.DATABASES["default"]["CONN_MAX_AGE"] == 0
    assert "pool" not in django_settings.DATABASES.get("owner", {}).get("OPTIONS", {})
