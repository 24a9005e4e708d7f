"""PostgreSQL: lookup events that arrive together are appended in one transaction
(customers/audit/group_commit.py), and each is committed before its thread sees it."""

import threading
import time

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, OperationalError, connection, connections

from customers.audit import group_commit, heads
from customers.audit import log as audit_log
from customers.lookups import look_up_customer
from customers.models import LookupEvent
from solarproof_portal import database
from tests.support.audit import record, verify


@pytest.fixture
def postgresql(committed_db):
    if connection.vendor != "postgresql":
        pytest.skip("appends are grouped on PostgreSQL; SQLite serialises whole transactions")


@pytest.fixture
def outsider():
    """A connection of its own, as another app server or an auditor has: it sees only
    what is committed."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as conn:
        yield conn


@pytest.fixture
def chain_held(outsider):
    """Another app server in the middle of its append: it holds the chain's lock until
    the returned function is called."""
    outsider.execute("BEGIN")
    outsider.execute("SELECT pg_advisory_xact_lock(%s)", [heads.LOOKUP_LOCK_KEY])
    return lambda: outsider.execute("COMMIT")


def _waiting_on_the_chain_lock(outsider, count: int) -> None:
    """Until `count` backends wait for the chain's advisory lock."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        (waiting,) = outsider.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
            [heads.LOOKUP_LOCK_KEY & 0xFFFFFFFF],
        ).fetchone()
        if waiting >= count:
            return
        time.sleep(0.01)
    raise AssertionError("no append came to wait on the chain's lock")


def _in_threads(target, arguments) -> tuple[list[threading.Thread], list, list[BaseException]]:
    results, errors = [None] * len(arguments), []

    def run(index, argument):
        try:
            results[index] = target(argument)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(arguments)]
    for thread in threads:
        thread.start()
    return threads, results, errors


def _queued(combiner, count: int) -> None:
    deadline = time.monotonic() + 20
    while len(combiner._queue) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(combiner._queue) >= count, "the appends never queued"


def test_appends_that_arrive_together_share_one_transaction_and_each_is_committed_before_it_returns(
    postgresql, make_user, outsider, chain_held
):
    user = make_user("sam.sales", "Sales")
    combiner = audit_log._appends
    before = combiner.transactions, combiner.rows
    seen_committed: dict[int, bool] = {}

    def look_up(project_id):
        event = record(user, project_id=project_id)
        # What another connection sees the moment the row is handed back.
        (count,) = outsider.execute(
            "SELECT count(*) FROM customers_lookupevent WHERE sequence = %s", [event.sequence]
        ).fetchone()
        seen_committed[project_id] = count == 1
        return event

    # The first append waits on the lock another server holds; nine more queue behind it.
    threads, events, errors = _in_threads(look_up, [1001])
    _waiting_on_the_chain_lock(outsider, 1)
    more, more_events, more_errors = _in_threads(look_up, list(range(1002, 1011)))
    _queued(combiner, 9)
    chain_held()
    for thread in threads + more:
        thread.join(30)

    assert not errors and not more_errors
    events = events + more_events
    assert [event.project_id for event in events] == list(range(1001, 1011))  # each thread its own row
    assert all(seen_committed.values()) and len(seen_committed) == 10
    # The first alone (it was writing while the others came), the nine others in one transaction.
    assert (combiner.transactions - before[0], combiner.rows - before[1]) == (2, 10)
    assert sorted(event.sequence for event in events) == list(range(1, 11))
    stored = {row.sequence: row for row in LookupEvent.objects.all()}
    assert all(stored[event.sequence].hash == event.hash for event in events)
    assert verify() == "OK: 10 events verified"


def test_one_row_the_database_refuses_does_not_take_the_rows_written_with_it_down(
    postgresql, make_user, outsider, chain_held
):
    user = make_user("sam.sales", "Sales")
    gone = make_user("gone.user", "Sales")
    gone_id = gone.pk
    gone.delete()  # its row fails the foreign key at COMMIT: a refusal, not an outage
    combiner = audit_log._appends

    def look_up(who):
        if who == "gone":
            return audit_log.append(**_fields(user_id=gone_id, username="gone.user", project_id=1999))
        return record(user, project_id=1000 + who)

    threads, _, first_errors = _in_threads(look_up, [1])
    _waiting_on_the_chain_lock(outsider, 1)
    more, results, errors = _in_threads(look_up, [2, "gone", 3])
    _queued(combiner, 3)
    chain_held()
    for thread in threads + more:
        thread.join(30)

    assert not first_errors
    assert len(errors) == 1 and isinstance(errors[0], DatabaseError)
    assert results[1] is None
    assert sorted(LookupEvent.objects.values_list("project_id", flat=True)) == [1001, 1002, 1003]
    assert verify() == "OK: 3 events verified"


def test_an_append_inside_the_callers_transaction_is_written_in_it(postgresql, make_user, outsider):
    from django.db import transaction

    user = make_user("sam.sales", "Sales")
    with transaction.atomic():
        event = record(user, project_id=1001)
        (count,) = outsider.execute("SELECT count(*) FROM customers_lookupevent").fetchone()
        assert count == 0  # not committed yet: it belongs to the caller's transaction
    (count,) = outsider.execute("SELECT count(*) FROM customers_lookupevent").fetchone()
    assert count == 1 and event.sequence == 1


def _fields(**overrides):
    return {
        "user_id": None,
        "username": "",
        "project_id": 1,
        "outcome": "found",
        "channel": "web",
        "customer_id": None,
        "ip": None,
        "user_agent": "",
        "request_id": "",
        "duration_ms": 0,
        "cache_hit": False,
        "auth_method": None,
        "reason": None,
        "role": "Sales",
        **overrides,
    }


def test_a_stream_line_that_fails_after_the_commit_is_logged_and_the_lookup_stands(
    postgresql, make_user, monkeypatch, caplog
):
    from customers.audit import stream

    def broken(record, fields):
        raise OSError("the log collector's pipe is gone")

    monkeypatch.setattr(stream, "emit", broken)
    user = make_user("sam.sales", "Sales")
    event = record(user, project_id=1001)
    assert LookupEvent.objects.get(sequence=event.sequence).hash == event.hash
    assert "in on_commit()" in caplog.text and "the log collector's pipe is gone" in caplog.text


@pytest.mark.parametrize(
    ("failure", "raised", "logged"),
    [
        (KeyError("a bug"), DatabaseError, True),  # a bug: withheld as in an outage, and logged
        (OperationalError("server closed the connection unexpectedly"), OperationalError, False),
    ],
    ids=["a-bug", "an-outage"],
)
def test_a_writer_that_fails_withholds_each_waiting_lookup_with_an_error_of_its_own(
    committed_db, caplog, failure, raised, logged
):
    writing = threading.Event()
    carry_on = threading.Event()
    batches: list[int] = []

    def failing_write(batch):
        batches.append(len(batch))
        writing.set()
        carry_on.wait(20)
        raise failure

    appends = group_commit.GroupCommit(failing_write)
    first, _, first_errors = _in_threads(appends.append, [{"project_id": 1}])
    assert writing.wait(20)
    more, _, more_errors = _in_threads(appends.append, [{"project_id": n} for n in (2, 3, 4)])
    _queued(appends, 3)
    carry_on.set()
    for thread in first + more:
        thread.join(30)

    errors = first_errors + more_errors
    assert batches == [1, 3]
    assert [type(error) for error in errors] == [raised] * 4
    assert len({id(error) for error in errors}) == 4  # one each: never one object raised in four threads
    assert all(error.__cause__ is failure for error in errors)
    writer_failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("The audit writer failed")]
    assert writer_failed == (
        ["The audit writer failed; lookups withheld: 1", "The audit writer failed; lookups withheld: 3"]
        if logged
        else []
    )


def test_a_lookup_waiting_for_the_writer_holds_no_connection_even_when_its_user_came_without_roles(
    postgresql, make_user, outsider, chain_held
):
    """A user the session did not bring (a management command's, or a session row without
    its user column) has their role read from the database: before the connection goes
    back, not while the lookup waits for another thread to write its row."""
    if not database.pooled():
        pytest.skip("connections are pooled unless DATABASE_POOL_MAX=0")
    make_user("sam.sales", "Sales")
    make_user("ivy.installer", "Installers")
    connection.close()  # this thread's connection back to the pool

    def look_up(username):
        user = get_user_model().objects.get(username=username)  # no group names with it
        return look_up_customer(user=user, project_id=2143)

    writer, _, writer_errors = _in_threads(look_up, ["sam.sales"])
    _waiting_on_the_chain_lock(outsider, 1)
    waiter, _, waiter_errors = _in_threads(look_up, ["ivy.installer"])
    _queued(audit_log._appends, 1)
    stats = connection.pool.get_stats()
    held = stats["pool_size"] - stats["pool_available"]
    chain_held()
    for thread in writer + waiter:
        thread.join(30)

    assert held == 1  # the writer's, waiting on the lock; none for the lookup queued behind it
    assert not writer_errors and not waiter_errors
    assert list(LookupEvent.objects.order_by("sequence").values_list("username", "role")) == [
        ("sam.sales", "Sales"),
        ("ivy.installer", "Installers"),
    ]


def test_a_bug_while_rows_are_retried_one_by_one_withholds_each_and_is_logged(committed_db, caplog):
    """A row refused in a batch, then a bug on the retry of each row alone: every lookup is
    withheld with an error of its own, caused by the bug, and the bug is logged."""
    writing = threading.Event()
    carry_on = threading.Event()
    bug = KeyError("a bug")

    def write(batch):
        if len(batch) > 1:
            raise IntegrityError("one row refused")
        if batch[0]["project_id"] == 1:  # the first writer: waits until the others queue
            writing.set()
            carry_on.wait(20)
            return [batch[0]]
        raise bug

    appends = group_commit.GroupCommit(write)
    first, results, first_errors = _in_threads(appends.append, [{"project_id": 1}])
    assert writing.wait(20)
    more, _, errors = _in_threads(appends.append, [{"project_id": n} for n in (2, 3)])
    _queued(appends, 2)
    carry_on.set()
    for thread in first + more:
        thread.join(30)

    assert not first_errors and results == [{"project_id": 1}]
    assert [type(error) for error in errors] == [DatabaseError, DatabaseError]
    assert all(error.__cause__ is bug for error in errors)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "The audit writer failed; lookups withheld: 1"
    ] * 2
