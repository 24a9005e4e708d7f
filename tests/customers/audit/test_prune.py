"""Pruning, as the operator running prune_audit_log sees it, for what the checkpoint tests
leave out: the age the service itself accepts, an unreadable checkpoint file, a prune over
an unsigned record the operator accepts, deleting in batches, and a prune record that
cannot be kept outside the database. (Refusals over a tampered log, the prune record's
signature and the checkpoint after it: test_checkpoints.py.)"""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.audit import checkpoints, signing
from customers.audit import prune as audit_prune
from customers.models import AuditAnchor, LookupEvent
from tests.support.audit import TABLE, backdated_chain, tamper, verify


@pytest.fixture
def checkpoint_file(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    return tmp_path / "checkpoints.jsonl"


def prune(*options: str) -> str:
    out = StringIO()
    try:
        call_command("prune_audit_log", "--older-than-days", "365", "--by", "ada.admin", *options, stdout=out)
    except CommandError as exc:
        return f"ERROR {exc}"
    return out.getvalue().strip()


def remaining() -> list[int]:
    return list(LookupEvent.objects.order_by("sequence").values_list("sequence", flat=True))


@pytest.mark.parametrize("days", [0, -1, audit_prune.MAX_RETENTION_DAYS + 1])
def test_the_prune_service_refuses_an_age_outside_1_to_36500_days_and_deletes_nothing(db, sales_user, days):
    """The command checks too; the service must not rely on it (another caller, a typo)."""
    backdated_chain(sales_user, old_count=6, total=10)
    with pytest.raises(audit_prune.PruneRefused) as refused:
        audit_prune.prune(older_than_days=days, username="ada.admin")
    assert str(refused.value) == "Nothing was pruned: the age must be from 1 to 36500 days."
    assert remaining() == list(range(1, 11)) and not AuditAnchor.objects.exists()


def test_the_prune_service_takes_ages_from_1_to_36500_days(db, sales_user, checkpoint_file):
    backdated_chain(sales_user, old_count=6, total=10)
    assert audit_prune.prune(older_than_days=audit_prune.MAX_RETENTION_DAYS, username="ada.admin") is None
    anchor = audit_prune.prune(older_than_days=1, username="ada.admin")
    assert (anchor.through_sequence, anchor.events_pruned, anchor.older_than_days) == (6, 6, 1)
    assert remaining() == [7, 8, 9, 10]


def test_prune_refuses_when_the_checkpoint_file_cannot_be_read(db, sales_user, checkpoint_file):
    backdated_chain(sales_user, old_count=6, total=10)
    checkpoint_file.write_text("not a statement\n")
    assert prune() == "ERROR Nothing was pruned: cannot read AUDIT_CHECKPOINT_FILE (line 1 is not JSON)."
    assert remaining() == list(range(1, 11)) and not AuditAnchor.objects.exists()


def test_prune_goes_ahead_over_an_unsigned_prune_record_only_when_the_operator_accepts_it(
    db, sales_user, checkpoint_file
):
    backdated_chain(sales_user, old_count=6, total=10)
    through_hash = LookupEvent.objects.get(sequence=2).hash
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 2")
    AuditAnchor.objects.create(
        username="prune_audit_log", through_sequence=2, through_hash=through_hash, events_pruned=2,
        older_than_days=365, key_id="", signature="",
    )  # fmt: skip
    assert prune().startswith(
        "ERROR Nothing was pruned: the audit log does not verify. FAILED at sequence 3: the prune record through "
        "sequence 2 is not signed"
    )
    assert remaining() == list(range(3, 11))

    answer = prune("--accept-legacy-through", "2")
    assert answer == "Pruned 4 events through sequence 6; the remaining chain starts from that anchor."
    assert remaining() == [7, 8, 9, 10]
    assert verify("--accept-legacy-through", "2").startswith("OK: 4 events verified")


@pytest.mark.parametrize(
    ("old", "batches"),
    [(7, [(1, 3), (4, 6), (7, 7)]), (6, [(1, 3), (4, 6)])],
    ids=["a batch and a bit", "whole batches"],
)
def test_prune_deletes_in_batches_of_at_most_prune_batch_events(
    db, sales_user, checkpoint_file, monkeypatch, old, batches
):
    """One DELETE per PRUNE_BATCH events (5000), so a prune of years of lookups never
    runs one statement over millions of rows; three here, to see the batches."""
    monkeypatch.setattr(audit_prune, "PRUNE_BATCH", 3)
    backdated_chain(sales_user, old_count=old, total=old + 2)
    with CaptureQueriesContext(connection) as queries:
        answer = prune()
    deletes = [query["sql"] for query in queries if query["sql"].startswith("DELETE") and TABLE in query["sql"]]
    ranges = [tuple(map(int, re.search(r"BETWEEN (\d+) AND (\d+)", sql).groups())) for sql in deletes]
    assert ranges == batches
    assert answer == f"Pruned {old} events through sequence {old}; the remaining chain starts from that anchor."
    assert remaining() == [old + 1, old + 2]
    assert AuditAnchor.objects.get().events_pruned == old


def test_a_prune_record_that_cannot_be_kept_outside_the_database_is_reported_with_its_line(
    db, sales_user, settings, tmp_path, django_capture_on_commit_callbacks, caplog
):
    """The deletion is committed by then and stands; the operator is told what to keep by
    hand. (Before, the command answered a traceback from Django's own error handling.)"""
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "unmounted" / "checkpoints.jsonl")
    backdated_chain(sales_user, old_count=6, total=10)
    with django_capture_on_commit_callbacks(execute=True):
        answer = prune("--by", "zoë.admin")
    assert answer == "Pruned 6 events through sequence 6; the remaining chain starts from that anchor."
    assert remaining() == [7, 8, 9, 10]
    anchor = AuditAnchor.objects.get()
    assert anchor.username == "zoë.admin"
    [failure] = [r for r in caplog.records if r.name == "customers.audit.prune"]
    assert failure.levelname == "ERROR" and failure.exc_info is not None
    message = failure.getMessage()
    assert message.startswith(
        "The prune through sequence 6 is done, but its record or the checkpoint after it could not be kept outside "
        "the database (check AUDIT_CHECKPOINT_FILE); if the record is not there, add this line: {"
    )
    line = message.split("add this line: ", 1)[1]
    # Exactly the line a prune writes to the file when it can (keys sorted, UTF-8), and it checks.
    assert line == checkpoints.statement_line(checkpoints.prune_statement(anchor))
    assert '"username": "zoë.admin"' in line
    statement = json.loads(line)
    assert list(statement) == sorted(statement)
    assert statement["type"] == "prune" and statement["through_sequence"] == 6
    assert signing.check(statement) is signing.Check.VALID


def test_prune_goes_by_the_events_sequence_not_their_row_ids(db, sales_user, checkpoint_file):
    """Row IDs need not match sequences (PostgreSQL never gives back an ID a rolled-back
    append took): the events deleted are the first ones in the chain's order."""
    backdated_chain(sales_user, old_count=6, total=10)
    tamper(f"UPDATE {TABLE} SET id = id + 1000")
    assert prune() == "Pruned 6 events through sequence 6; the remaining chain starts from that anchor."
    assert remaining() == [7, 8, 9, 10]
    assert verify() == "OK: 4 events verified"


def test_prune_while_another_session_holds_the_chains_lock_says_so_and_deletes_nothing(
    committed_db, sales_user, checkpoint_file, settings
):
    if connection.vendor != "postgresql":
        pytest.skip("the chain's lock is a PostgreSQL advisory lock; SQLite's is its write lock")
    import psycopg

    from customers.audit import heads

    backdated_chain(sales_user, old_count=6, total=10)
    settings.DATABASE_LOCK_TIMEOUT = 0.3
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '300ms'")  # as DATABASE_LOCK_TIMEOUT=0.3 sends it
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [heads.LOOKUP_LOCK_KEY])  # an insider, session-level
        answer = prune()
    assert answer == (
        "ERROR Nothing was pruned: another session holds the audit log's lock (waited DATABASE_LOCK_TIMEOUT, "
        "0.3 s); try again when it is let go."
    )
    assert remaining() == list(range(1, 11))
    assert prune().startswith("Pruned 6 events")  # let go: the next prune goes ahead


class _LockNotAvailable(Exception):
    """What psycopg raises for PostgreSQL's lock_not_available (the error Django's carries)."""

    sqlstate = "55P03"


def _lock_chain_fails_with(error):
    def lock_chain():
        raise error

    return lock_chain


def test_a_prune_whose_wait_for_the_lock_timed_out_says_so_on_any_database(
    db, sales_user, checkpoint_file, settings, monkeypatch
):
    from django.db import OperationalError

    from customers.audit import heads

    backdated_chain(sales_user, old_count=6, total=10)
    settings.DATABASE_LOCK_TIMEOUT = 5
    timed_out = OperationalError("canceling statement due to lock timeout")
    timed_out.__cause__ = _LockNotAvailable()
    monkeypatch.setattr(heads, "lock_chain", _lock_chain_fails_with(timed_out))
    assert prune() == (
        "ERROR Nothing was pruned: another session holds the audit log's lock (waited DATABASE_LOCK_TIMEOUT, "
        "5 s); try again when it is let go."
    )
    assert remaining() == list(range(1, 11))
    # Any other database error is not a lock timeout: it is raised as it is.
    monkeypatch.setattr(heads, "lock_chain", _lock_chain_fails_with(OperationalError("server closed the connection")))
    with pytest.raises(OperationalError, match="server closed the connection"):
        audit_prune.prune(older_than_days=365, username="ada.admin")
