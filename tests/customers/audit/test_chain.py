"""Tamper evidence: the hash chains, their verifier and the triggers (checkpoints and
prune: tests/customers/audit/test_checkpoints.py)."""

import itertools
import multiprocessing
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from customers.audit import heads
from customers.audit.log import record_review
from customers.lookups import _client, look_up_customer
from customers.models import AuditAnchor, HistoryReview, LookupEvent
from tests.support.audit import ANCHORS, REVIEWS, TABLE, record, tamper, verify


@pytest.fixture
def chain(db, sales_user):
    return [record(sales_user, project_id) for project_id in (2143, 2144, 2145, 2146, 2147)]


def test_an_honest_log_verifies(chain):
    assert verify() == "OK: 5 events verified"


def test_an_empty_log_verifies(db):
    assert verify() == "OK: 0 events verified"


def test_events_link_in_a_gapless_sequence(chain):
    assert [event.sequence for event in chain] == [1, 2, 3, 4, 5]
    assert chain[0].prev_hash == heads.GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(chain))


def test_the_hash_covers_exactly_what_is_stored(chain):
    stored = LookupEvent.objects.get(sequence=3)
    assert heads.hash_of(stored) == stored.hash


def test_an_edited_row_is_caught(chain):
    tamper(f"UPDATE {TABLE} SET project_id = 9999 WHERE sequence = 3")
    assert verify() == "ERROR FAILED at sequence 3: its stored values do not match its hash (a row was edited)"


@pytest.mark.parametrize("forged", ["local", None])
def test_an_edited_sign_in_method_is_caught(db, sales_user, forged):
    record(sales_user, auth_method="oidc")
    record(sales_user, auth_method="local")
    tamper(f"UPDATE {TABLE} SET auth_method = %s WHERE sequence = 1", [forged])
    assert verify() == "ERROR FAILED at sequence 1: its stored values do not match its hash (a row was edited)"


def test_events_from_before_the_sign_in_method_was_recorded_still_verify(db, sales_user):
    """Their hashes were made without the field, and it stays empty for them."""
    old = record(sales_user)
    assert old.auth_method is None
    # (The role, recorded since, is hashed beside the first fields; no auth_method among them.)
    assert heads.event_hash({name: getattr(old, name) for name in heads.CHAIN_FIELDS} | {"role": old.role}) == old.hash
    record(sales_user, auth_method="oidc")
    assert verify() == "OK: 2 events verified"


def test_an_edited_time_is_caught(chain):
    tamper(f"UPDATE {TABLE} SET created_at = %s WHERE sequence = 2", [timezone.now() - timedelta(days=3)])
    assert verify().startswith("ERROR FAILED at sequence 2: its stored values do not match")


def test_a_deleted_row_is_caught(chain):
    tamper(f"DELETE FROM {TABLE} WHERE sequence = 4")
    assert verify() == "ERROR FAILED at sequence 4: this event is missing (a row was deleted)"


def test_deleting_the_oldest_rows_is_caught(chain):
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 2")
    assert verify().startswith("ERROR FAILED at sequence 1: the log starts at sequence 3")


def test_an_inserted_row_is_caught(chain):
    # Make room at sequence 3 and put a forged event there with a correct-looking hash.
    tamper(f"UPDATE {TABLE} SET sequence = sequence + 100 WHERE sequence >= 3")
    tamper(f"UPDATE {TABLE} SET sequence = sequence - 99 WHERE sequence >= 103")
    forged = LookupEvent.objects.get(sequence=4)
    values = {name: getattr(forged, name) for name in heads.CHAIN_FIELDS}
    values.update(sequence=3, project_id=1234, prev_hash=chain[1].hash)
    tamper(
        f"INSERT INTO {TABLE} (sequence, created_at, user_id, username, project_id, outcome, customer_id, channel,"
        " ip, user_agent, request_id, duration_ms, cache_hit, prev_hash, hash)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [*values.values(), heads.event_hash(values)],
    )
    result = verify()
    assert result.startswith("ERROR FAILED at sequence 4"), result


def test_reordered_rows_are_caught(chain):
    tamper(f"UPDATE {TABLE} SET sequence = 1000 WHERE sequence = 2")
    tamper(f"UPDATE {TABLE} SET sequence = 2 WHERE sequence = 3")
    tamper(f"UPDATE {TABLE} SET sequence = 3 WHERE sequence = 1000")
    assert verify().startswith("ERROR FAILED at sequence 2: it does not link")


@pytest.mark.parametrize("statement", ["UPDATE {t} SET project_id = 1", "DELETE FROM {t}"])
def test_the_database_refuses_update_and_delete(chain, statement):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(t=TABLE))
    assert LookupEvent.objects.count() == 5


def test_postgresql_refuses_truncate(chain):
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's; SQLite has none")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {TABLE} CASCADE")
    assert LookupEvent.objects.count() == 5


@pytest.fixture
def reviews(db, admin_user_role):
    return [
        record_review(user=admin_user_role, kind=HistoryReview.Kind.VIEW, detail={"project": project_id}, rows=1)
        for project_id in (2143, 2144, 2145)
    ]


def test_review_records_link_in_their_own_gapless_chain(reviews, chain):
    assert [review.sequence for review in reviews] == [1, 2, 3]
    assert reviews[0].prev_hash == heads.GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(reviews))
    assert verify() == "OK: 5 events and 3 review records verified"


def test_a_deleted_review_record_is_caught(reviews):
    tamper(f"DELETE FROM {REVIEWS} WHERE sequence = 2", table=REVIEWS)
    assert verify() == "ERROR FAILED at review record 2: this review record is missing (a row was deleted)"


def test_an_edited_review_record_is_caught(reviews):
    tamper(f"UPDATE {REVIEWS} SET detail = %s WHERE sequence = 1", ['{"project": 1}'], table=REVIEWS)
    assert verify() == "ERROR FAILED at review record 1: its stored values do not match its hash (a row was edited)"


@pytest.mark.parametrize("table", [REVIEWS, ANCHORS])
@pytest.mark.parametrize("statement", ["UPDATE {t} SET username = 'mallory'", "DELETE FROM {t}"])
def test_the_database_refuses_to_change_review_and_prune_records(reviews, chain, sales_user, table, statement):
    tamper(
        f"INSERT INTO {ANCHORS} (created_at, username, through_sequence, through_hash, events_pruned,"
        " older_than_days, key_id, signature) VALUES (%s, 'x', 999, 'h', 0, 1, '', '')",
        [timezone.now()],
        table=ANCHORS,
    )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(t=table))
    assert HistoryReview.objects.count() == 3 and AuditAnchor.objects.filter(username="x").exists()


@pytest.mark.parametrize("table", [REVIEWS, ANCHORS])
def test_postgresql_refuses_to_truncate_review_and_prune_records(reviews, table):
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's; SQLite has none")
    tamper(
        f"INSERT INTO {ANCHORS} (created_at, username, through_sequence, through_hash, events_pruned,"
        " older_than_days, key_id, signature) VALUES (%s, 'x', 999, 'h', 0, 1, '', '')",
        [timezone.now()],
        table=ANCHORS,
    )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {table} CASCADE")
    assert HistoryReview.objects.count() == 3


def test_prune_needs_a_retention(settings, db):
    settings.AUDIT_RETENTION_DAYS = None
    with pytest.raises(CommandError, match="Say how much history to keep"):
        call_command("prune_audit_log")
    settings.AUDIT_RETENTION_DAYS = 30
    from io import StringIO

    out = StringIO()
    call_command("prune_audit_log", stdout=out)
    assert "Nothing older than 30 days." in out.getvalue()


@pytest.fixture
def committed_log(committed_db, settings):
    settings.LOOKUP_RATE_LIMIT = (100_000, 60)


def test_concurrent_threads_never_fork_the_chain(committed_log, make_user):
    users = [make_user(f"writer{index}", "Sales") for index in range(8)]
    errors: list[BaseException] = []

    def write(user) -> None:
        try:
            for project_id in range(1001, 1011):
                look_up_customer(user=user, project_id=project_id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert LookupEvent.objects.count() == 80
    assert sorted(LookupEvent.objects.values_list("sequence", flat=True)) == list(range(1, 81))
    assert verify() == "OK: 80 events verified"


def _write_in_process(user_pk: int, rounds: int) -> None:
    connections.close_all()
    _client.cache_clear()
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(pk=user_pk)
    for index in range(rounds):
        look_up_customer(user=user, project_id=1001 + index % 30)
    connections.close_all()


def test_concurrent_processes_never_fork_the_chain(committed_log, make_user):
    if connection.vendor != "postgresql":
        pytest.skip("several app processes share PostgreSQL in production; SQLite is single-server")
    users = [make_user(f"proc{index}", "Sales") for index in range(4)]
    connections.close_all()
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_write_in_process, args=(user.pk, 25)) for user in users]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    assert LookupEvent.objects.count() == 100
    assert sorted(LookupEvent.objects.values_list("sequence", flat=True)) == list(range(1, 101))
    assert verify() == "OK: 100 events verified"


def test_concurrent_review_writers_never_fork_the_review_chain(committed_log, make_user):
    admins = [make_user(f"reviewer{index}", "Admins") for index in range(6)]
    errors: list[BaseException] = []

    def write(user) -> None:
        try:
            for page in range(10):
                record_review(user=user, kind=HistoryReview.Kind.VIEW, detail={"page": page}, rows=page)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(user,)) for user in admins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(HistoryReview.objects.values_list("sequence", flat=True)) == list(range(1, 61))
    assert verify() == "OK: 0 events and 60 review records verified"


def test_it_hashes_awkward_values_exactly_as_the_verifier_does(db, sales_user):
    """On PostgreSQL the database function builds the hashed text; the verifier rebuilds
    it in Python. Quotes, backslashes, control and non-ASCII characters, IPv6, nulls."""
    first = record(
        sales_user,
        user_agent='Mozilla/5.0 ☀ "quoted" \\ back\tslash\u2028 café',
        request_id="req:42.a-b",
        ip="2001:db8::1",
        auth_method="oidc",
        reason='Job "7" \\ ☀',
    )
    second = record(sales_user, project_id=4294967295, ip=None, cache_hit=True, duration_ms=12345, customer_id=77)
    for returned in (first, second):
        stored = LookupEvent.objects.get(sequence=returned.sequence)
        assert (returned.pk, returned.hash, returned.prev_hash, returned.created_at) == (
            stored.pk,
            stored.hash,
            stored.prev_hash,
            stored.created_at,
        )
        assert heads.hash_of(stored) == stored.hash
    assert second.prev_hash == first.hash
    assert verify() == "OK: 2 events verified"
