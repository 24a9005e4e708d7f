"""Retention: deleting old events, only after the whole log verifies, behind a gate the
append-only triggers open for this transaction alone; a signed prune record says where
the remaining chain now starts."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from customers.audit import checkpoints, heads, signing, verify
from customers.models import AuditAnchor, AuditGate, LookupEvent
from solarproof_portal import database

logger = logging.getLogger(__name__)

# --- retention ---------------------------------------------------------------------

PRUNE_BATCH = 5000


class PruneRefused(Exception):
    """The log does not verify, so nothing was pruned: a prune must not erase the evidence."""


@contextmanager
def open_gate() -> Iterator[None]:
    """The one privileged path past the append-only triggers: inside this block (and its
    transaction) DELETE on the log is allowed; the gate row never outlives it."""
    with transaction.atomic():
        gate = AuditGate.objects.create()
        yield
        AuditGate.objects.filter(pk=gate.pk).delete()


MAX_RETENTION_DAYS = 36_500  # a hundred years; more is a typo, and overflows the calendar


def prune(*, older_than_days: int, username: str, accept_legacy_through: int | None = None) -> AuditAnchor | None:
    """Delete events older than ``older_than_days`` through the one privileged path.

    First, inside the chain's lock, the whole remaining log is verified (from the latest
    prune record, against every statement in AUDIT_CHECKPOINT_FILE, time order included);
    if it does not hold, PruneRefused and nothing is deleted, so a backdated, edited row
    cannot be pruned away. Then only the events before the first one at or after the
    cutoff go, and only when every one of them is older than the cutoff, in time order:
    a row stamped 2001 at the end of the log cannot take today's events with it.
    The database refuses DELETE unless the gate row exists, and it only ever exists
    inside this transaction. The signed prune record says where the chain now starts.
    """
    if not 1 <= older_than_days <= MAX_RETENTION_DAYS:
        raise PruneRefused(f"Nothing was pruned: the age must be from 1 to {MAX_RETENTION_DAYS} days.")
    cutoff = timezone.now() - timezone.timedelta(days=older_than_days)
    table = connection.ops.quote_name(LookupEvent._meta.db_table)
    try:
        statements = checkpoints.checkpoint_file_statements()
        verify.check_accepted_legacy(accept_legacy_through)
    except verify.UnknownLegacyPrune as exc:
        raise PruneRefused(f"Nothing was pruned: {exc}.") from None
    except (OSError, ValueError) as exc:
        raise PruneRefused(f"Nothing was pruned: cannot read AUDIT_CHECKPOINT_FILE ({exc}).") from None
    with transaction.atomic():
        try:
            heads.lock_chain()
        except OperationalError as exc:
            if not database.lock_timed_out(exc):
                raise
            raise PruneRefused(
                "Nothing was pruned: another session holds the audit log's lock (waited DATABASE_LOCK_TIMEOUT, "
                f"{settings.DATABASE_LOCK_TIMEOUT:g} s); try again when it is let go."
            ) from None
        verification = verify.verify_chain(statements=statements, accept_legacy_through=accept_legacy_through)
        if not verification.ok:
            raise PruneRefused(f"Nothing was pruned: the audit log does not verify. {verification}")
        last = _last_prunable(cutoff)
        if last is None:
            return None
        through_sequence, through_hash = last
        first = LookupEvent.objects.order_by("sequence").values_list("sequence", flat=True).first()
        deleted = 0
        with open_gate(), connection.cursor() as cursor:
            for low in range(first, through_sequence + 1, PRUNE_BATCH):
                high = min(low + PRUNE_BATCH - 1, through_sequence)
                cursor.execute(f"DELETE FROM {table} WHERE sequence BETWEEN %s AND %s", [low, high])  # noqa: S608
                deleted += cursor.rowcount
        anchor = AuditAnchor(
            created_at=timezone.now(),
            username=username,
            through_sequence=through_sequence,
            through_hash=through_hash,
            events_pruned=deleted,
            older_than_days=older_than_days,
        )
        signed = signing.sign(checkpoints.prune_statement(anchor))  # sign() replaces the empty signature
        anchor.key_id, anchor.signature = signed["key_id"], signed["signature"]
        anchor.save()
        transaction.on_commit(functools.partial(_published_prune, anchor))
    return anchor


def _last_prunable(cutoff: datetime) -> tuple[int, str] | None:
    """The sequence and hash of the last event to delete: the one before the first event
    at or after the cutoff (the last event, when all are older). Refused, naming the rows,
    when an event older than the cutoff comes after that first one: time must follow the
    sequence for "older than" to mean anything. (Verification, run first under the same
    lock, has already failed any step back in time larger than its tolerance.)"""
    events = LookupEvent.objects.order_by("sequence")
    first_kept = events.filter(created_at__gte=cutoff).values_list("sequence", "created_at").first()
    last_old = events.filter(created_at__lt=cutoff).reverse().values_list("sequence", "created_at", "hash").first()
    if last_old is None:
        return None
    if first_kept is not None and first_kept[0] < last_old[0]:
        raise PruneRefused(
            f"Nothing was pruned: event {first_kept[0]} ({first_kept[1].isoformat()}) is not older than the cutoff "
            f"({cutoff.isoformat()}) but comes before event {last_old[0]} ({last_old[1].isoformat()}), which is: "
            "times run backwards across the cutoff."
        )
    return last_old[0], last_old[2]


def _published_prune(anchor: AuditAnchor) -> None:
    """After the deletion commits: the prune record into AUDIT_CHECKPOINT_FILE (and the audit
    stream), then a checkpoint. The deletion stands whatever happens here, so a failure is
    logged with the line to keep by hand: a prune record kept only in the database could be
    deleted with the events after it, unnoticed. (Not on_commit's robust=True: Django's own
    error message there fails on a functools.partial, and the prune answered a traceback.)"""
    statement = checkpoints.prune_statement(anchor)
    try:
        checkpoints.publish(statement)
        checkpoints.take_checkpoint()
    except Exception:
        logger.exception(
            "The prune through sequence %s is done, but its record or the checkpoint after it could not be kept "
            "outside the database (check AUDIT_CHECKPOINT_FILE); if the record is not there, add this line: %s",
            anchor.through_sequence,
            checkpoints.statement_line(statement),
        )
