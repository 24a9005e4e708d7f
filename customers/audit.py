"""The tamper-evident audit chain.

Every ``LookupEvent`` carries a gapless ``sequence``, the previous event's hash and its
own: SHA-256 over a canonical serialisation of exactly the values stored. Appends are
serialised (a transaction-scoped advisory lock on PostgreSQL; SQLite's write lock,
taken at BEGIN IMMEDIATE), so concurrent writers on any number of app servers never
fork the chain. Editing, deleting, inserting or reordering a row breaks the chain at
that row; rewriting the whole table is caught against a signed checkpoint kept
outside the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from customers.models import AuditAnchor, AuditGate, LookupEvent

GENESIS = "0" * 64
# Any constant works; it names the chain's lock among the database's advisory locks.
_ADVISORY_LOCK_KEY = 0x50_0F_A0_D1
CHAIN_FIELDS = (
    "sequence",
    "created_at",
    "user_id",
    "username",
    "project_id",
    "outcome",
    "customer_id",
    "channel",
    "ip",
    "user_agent",
    "request_id",
    "duration_ms",
    "cache_hit",
    "prev_hash",
)
# Fields added after the first events were written: hashed only where set, so every
# event written before them still verifies as it was.
LATER_CHAIN_FIELDS = ("auth_method",)
_IP_FIELD = models.GenericIPAddressField()


def _canonical_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # Microseconds are what both databases store: hash exactly that.
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def event_hash(values: dict[str, Any]) -> str:
    hashed = [*CHAIN_FIELDS, *(name for name in LATER_CHAIN_FIELDS if values.get(name) is not None)]
    canonical = json.dumps(
        [_canonical_value(values[name]) for name in hashed], separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def hash_of(event: LookupEvent) -> str:
    return event_hash({name: getattr(event, name) for name in (*CHAIN_FIELDS, *LATER_CHAIN_FIELDS)})


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
    # SQLite: the transaction began with BEGIN IMMEDIATE (settings), so it holds the lock.


def _head() -> tuple[int, str]:
    """The sequence and hash the next event links to."""
    last = LookupEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    if last:
        return last
    anchor = AuditAnchor.objects.order_by("-through_sequence").values_list("through_sequence", "through_hash").first()
    return anchor or (0, GENESIS)


def append(**fields: Any) -> LookupEvent:
    """Append one event to the chain. Only ``LookupEvent.objects.record`` calls this."""
    with transaction.atomic():
        _lock_chain()
        sequence, prev_hash = _head()
        event = LookupEvent(
            sequence=sequence + 1,
            prev_hash=prev_hash,
            # Taken under the lock, so time order and sequence order agree.
            created_at=timezone.now(),
            **{**fields, "ip": _IP_FIELD.get_prep_value(fields.get("ip"))},
        )
        event.hash = hash_of(event)
        event.save(force_insert=True)
    return event


# --- signing -----------------------------------------------------------------------


def sign(payload: dict[str, Any]) -> str:
    key = settings.AUDIT_SIGNING_KEY
    if not key:
        return ""
    message = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _anchor_payload(anchor: AuditAnchor) -> dict[str, Any]:
    return {"through_sequence": anchor.through_sequence, "through_hash": anchor.through_hash}


def checkpoint() -> dict[str, Any]:
    """A signed statement of the chain's head, to be kept outside the database."""
    if not settings.AUDIT_SIGNING_KEY:
        raise ValueError("AUDIT_SIGNING_KEY must be set to sign checkpoints.")
    sequence, head_hash = _head()
    statement = {"sequence": sequence, "hash": head_hash, "time": timezone.now().isoformat()}
    return {**statement, "signature": sign(statement)}


# --- verification ------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    bad_sequence: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"OK: {self.events} events verified"
        return f"FAILED at sequence {self.bad_sequence}: {self.reason}"


def verify_chain(*, checkpoint: dict[str, Any] | None = None) -> Verification:
    """Walk the chain in sequence order; report the first event that does not hold."""
    anchors = {anchor.through_sequence: anchor for anchor in AuditAnchor.objects.all()}
    for anchor in anchors.values():
        if settings.AUDIT_SIGNING_KEY and anchor.signature != sign(_anchor_payload(anchor)):
            return Verification(False, 0, anchor.through_sequence + 1, "the prune anchor's signature does not match")

    checked = 0
    expected_sequence: int | None = None
    previous_hash = ""
    hashes_at_checkpoint: str | None = None
    rows = LookupEvent.objects.order_by("sequence").values_list(*CHAIN_FIELDS, *LATER_CHAIN_FIELDS, "hash")
    for row in rows.iterator(chunk_size=5000):
        values = dict(zip((*CHAIN_FIELDS, *LATER_CHAIN_FIELDS, "hash"), row, strict=True))
        sequence = values["sequence"]
        if expected_sequence is None:
            anchor = anchors.get(sequence - 1)
            if sequence == 1:
                previous_hash = GENESIS
            elif anchor is not None:
                previous_hash = anchor.through_hash
            else:
                start = max((through for through in anchors if through < sequence), default=0) + 1
                return Verification(False, checked, start, _missing_start(sequence))
        elif sequence != expected_sequence:
            return Verification(False, checked, expected_sequence, "this event is missing (a row was deleted)")
        if values["prev_hash"] != previous_hash:
            return Verification(
                False, checked, sequence, "it does not link to the event before it (a row was inserted or reordered)"
            )
        if event_hash(values) != values["hash"]:
            return Verification(False, checked, sequence, "its stored values do not match its hash (a row was edited)")
        if checkpoint and sequence == checkpoint["sequence"]:
            hashes_at_checkpoint = values["hash"]
        previous_hash, expected_sequence = values["hash"], sequence + 1
        checked += 1

    if checkpoint:
        problem = _check_checkpoint(
            checkpoint, hashes_at_checkpoint, anchors, last_sequence=(expected_sequence or 1) - 1
        )
        if problem:
            return Verification(False, checked, checkpoint.get("sequence"), problem)
    return Verification(True, checked)


def _missing_start(first_sequence: int) -> str:
    return f"the log starts at sequence {first_sequence} and no prune explains the rows before it (rows deleted)"


def _check_checkpoint(
    statement: dict[str, Any], stored_hash: str | None, anchors: dict[int, AuditAnchor], *, last_sequence: int
) -> str:
    claimed = {key: statement.get(key) for key in ("sequence", "hash", "time")}
    if not settings.AUDIT_SIGNING_KEY:
        return "AUDIT_SIGNING_KEY is not set, so the checkpoint cannot be checked"
    if not hmac.compare_digest(str(statement.get("signature", "")), sign(claimed)):
        return "the checkpoint's signature is not valid (wrong key, or the checkpoint was altered)"
    sequence = claimed["sequence"]
    if not isinstance(sequence, int) or sequence < 0:
        return "the checkpoint names no sequence"
    if sequence == 0:
        return ""
    if sequence > last_sequence:
        return f"the log ends at sequence {last_sequence}, before the checkpoint (rows removed from the end)"
    if stored_hash is None:
        anchor = anchors.get(sequence)
        if anchor and anchor.through_hash == claimed["hash"]:
            return ""
        if any(through >= sequence for through in anchors):
            return ""  # pruned since; the anchor chain above vouches for what remains
        return "the checkpoint's event is not in the log"
    if stored_hash != claimed["hash"]:
        return "the event at the checkpoint has a different hash (the log was rewritten)"
    return ""


# --- retention ---------------------------------------------------------------------

PRUNE_BATCH = 5000


@contextmanager
def open_gate() -> Iterator[None]:
    """The one privileged path past the append-only triggers: inside this block (and its
    transaction) DELETE on the log is allowed; the gate row never outlives it."""
    with transaction.atomic():
        gate = AuditGate.objects.create()
        yield
        AuditGate.objects.filter(pk=gate.pk).delete()


def prune(*, older_than_days: int, username: str) -> AuditAnchor | None:
    """Delete events older than ``older_than_days`` through the one privileged path.

    The database refuses DELETE on the table unless the gate row exists, and the gate
    row only ever exists inside this transaction. The anchor records where the chain
    now starts, so what remains still verifies.
    """
    cutoff = timezone.now() - timezone.timedelta(days=older_than_days)
    table = connection.ops.quote_name(LookupEvent._meta.db_table)
    with transaction.atomic():
        _lock_chain()
        last = (
            LookupEvent.objects.filter(created_at__lt=cutoff)
            .order_by("-sequence")
            .values_list("sequence", "hash")
            .first()
        )
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
            username=username,
            through_sequence=through_sequence,
            through_hash=through_hash,
            events_pruned=deleted,
            older_than_days=older_than_days,
        )
        anchor.signature = sign(_anchor_payload(anchor))
        anchor.save()
    return anchor
