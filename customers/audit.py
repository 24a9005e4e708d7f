"""The tamper-evident audit chains.

Two chains: every ``LookupEvent``, and every ``HistoryReview`` (somebody read the log).
Each row carries a gapless ``sequence``, the previous row's hash and its own: SHA-256
over a canonical serialisation of exactly the values stored (``customers.chain``).
Appends are serialised (a transaction-scoped advisory lock per chain on PostgreSQL;
SQLite's write lock, taken at BEGIN IMMEDIATE), so concurrent writers on any number of
app servers never fork a chain. Editing, deleting, inserting or reordering a row breaks
the chain at that row; rewriting or cutting the end off a whole table is caught against
the signed checkpoints kept outside the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from customers import chain
from customers.models import AuditAnchor, AuditGate, HistoryReview, LookupEvent

GENESIS = chain.GENESIS
CHAIN_FIELDS = chain.LOOKUP_FIELDS
LATER_CHAIN_FIELDS = chain.LOOKUP_LATER_FIELDS
event_hash = chain.lookup_hash
# Any constants work; they name each chain's lock among the database's advisory locks.
_ADVISORY_LOCK_KEY = 0x50_0F_A0_D1
_REVIEW_LOCK_KEY = 0x50_0F_A0_D2
_IP_FIELD = models.GenericIPAddressField()


def hash_of(event: LookupEvent) -> str:
    return chain.lookup_hash({name: getattr(event, name) for name in (*CHAIN_FIELDS, *LATER_CHAIN_FIELDS)})


def review_hash_of(review: HistoryReview) -> str:
    return chain.review_hash({name: getattr(review, name) for name in chain.REVIEW_FIELDS})


def _lock(key: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
    # SQLite: the transaction began with BEGIN IMMEDIATE (settings), so it holds the lock.


def _lock_chain() -> None:
    _lock(_ADVISORY_LOCK_KEY)


def _head() -> tuple[int, str]:
    """The sequence and hash the next event links to."""
    last = LookupEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    if last:
        return last
    anchor = AuditAnchor.objects.order_by("-through_sequence").values_list("through_sequence", "through_hash").first()
    return anchor or (0, GENESIS)


def _review_head() -> tuple[int, str]:
    last = HistoryReview.objects.order_by("-sequence").values_list("sequence", "hash").first()
    return last or (0, GENESIS)


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


def append_review(**fields: Any) -> HistoryReview:
    """Append one review record to its chain. Only ``HistoryReview.objects.record`` calls this."""
    # Stored as JSON and read back as JSON: hash what a reader will see.
    fields["detail"] = json.loads(json.dumps(fields.get("detail") or {}))
    with transaction.atomic():
        _lock(_REVIEW_LOCK_KEY)
        sequence, prev_hash = _review_head()
        review = HistoryReview(
            sequence=sequence + 1,
            prev_hash=prev_hash,
            created_at=timezone.now(),
            **{**fields, "ip": _IP_FIELD.get_prep_value(fields.get("ip"))},
        )
        review.hash = review_hash_of(review)
        review.save(force_insert=True)
    return review


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
    reviews: int = 0
    # Which chain failed: "events" (lookup events) or "reviews" (review records).
    failed_chain: str = "events"

    def __str__(self) -> str:
        if self.ok:
            reviews = f" and {self.reviews} review record{'s' if self.reviews != 1 else ''}" if self.reviews else ""
            return f"OK: {self.events} events{reviews} verified"
        where = "review record" if self.failed_chain == "reviews" else "sequence"
        return f"FAILED at {where} {self.bad_sequence}: {self.reason}"


def verify_reviews() -> tuple[int, int | None, str]:
    """Walk the review chain: (records checked, first bad sequence, why)."""
    checked, previous_hash, expected = 0, GENESIS, 1
    fields = (*chain.REVIEW_FIELDS, "hash")
    for row in HistoryReview.objects.order_by("sequence").values_list(*fields).iterator(chunk_size=5000):
        values = dict(zip(fields, row, strict=True))
        sequence = values["sequence"]
        if sequence != expected:
            return checked, expected, "this review record is missing (a row was deleted)"
        if values["prev_hash"] != previous_hash:
            return checked, sequence, "it does not link to the record before it (a row was inserted or reordered)"
        if chain.review_hash(values) != values["hash"]:
            return checked, sequence, "its stored values do not match its hash (a row was edited)"
        previous_hash, expected = values["hash"], sequence + 1
        checked += 1
    return checked, None, ""


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
    reviews, bad_review, why = verify_reviews()
    if bad_review is not None:
        return Verification(False, checked, bad_review, why, reviews=reviews, failed_chain="reviews")
    return Verification(True, checked, reviews=reviews)


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
