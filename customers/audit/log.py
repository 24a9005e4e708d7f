"""The tamper-evident audit chains.

Two chains: every ``LookupEvent``, and every ``HistoryReview`` (somebody read the log).
Each row carries a gapless ``sequence``, the previous row's hash and its own: SHA-256
over a canonical serialisation of exactly the values stored (``customers.audit.chain``).
Appends are serialised (a transaction-scoped advisory lock per chain on PostgreSQL;
SQLite's write lock, taken at BEGIN IMMEDIATE), so concurrent writers on any number of
app servers never fork a chain. Editing, deleting, inserting or reordering a row breaks
the chain at that row; rewriting or cutting the end off a whole table is caught against
the signed checkpoints kept outside the database.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import AuthMethod
from customers.audit import chain, signing
from customers.audit import stream as audit_stream
from customers.models import AuditAnchor, AuditGate, Channel, HistoryReview, LookupEvent
from customers.outcomes import Outcome

logger = logging.getLogger(__name__)

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


def record_lookup(
    *,
    user: Any,
    project_id: int,
    outcome: Outcome,
    channel: Channel,
    customer_id: int | None = None,
    ip: str | None = None,
    user_agent: str = "",
    request_id: str = "",
    duration_ms: int = 0,
    cache_hit: bool = False,
    auth_method: AuthMethod | None = None,
    reason: str | None = None,
) -> LookupEvent:
    """The one way to write a lookup event: appended to the hash chain under its lock.
    The models refuse every update and delete; nothing else builds a row."""
    return append(
        user=user,
        username=user.get_username(),
        project_id=project_id,
        outcome=outcome,
        channel=channel,
        customer_id=customer_id,
        ip=ip,
        user_agent=user_agent[: LookupEvent._meta.get_field("user_agent").max_length],
        request_id=request_id[:64],
        duration_ms=max(duration_ms, 0),
        cache_hit=cache_hit,
        auth_method=auth_method,
        reason=reason[: LookupEvent._meta.get_field("reason").max_length] if reason else None,
    )


def record_review(
    *,
    user: Any,
    kind: HistoryReview.Kind,
    detail: dict[str, Any],
    rows: int | None = None,
    ip: str | None = None,
    request_id: str = "",
) -> HistoryReview:
    """The one way to put a read of the log (or customers' details kept on a device) on
    the record: appended to the review chain under its lock. ``detail`` says what was
    read, in JSON-able values, and never holds customers' personal details (project IDs,
    filters, sequences)."""
    return append_review(
        user=user,
        username=user.get_username(),
        kind=kind,
        detail=detail,
        rows=rows,
        ip=ip,
        request_id=request_id[:64],
    )


def append(**fields: Any) -> LookupEvent:
    """Append one event to the chain. Only ``record_lookup`` calls this."""
    fields = {**fields, "ip": _IP_FIELD.get_prep_value(fields.get("ip"))}
    if connection.vendor == "postgresql":
        event = _append_in_one_round_trip(fields)
        # Outside a transaction the row is committed already, and this runs at once.
        transaction.on_commit(functools.partial(_published, "lookup", event.sequence, event), robust=True)
        return event
    with transaction.atomic():
        _lock_chain()
        sequence, prev_hash = _head()
        event = LookupEvent(
            sequence=sequence + 1,
            prev_hash=prev_hash,
            # Taken under the lock, so time order and sequence order agree.
            created_at=timezone.now(),
            **fields,
        )
        event.hash = hash_of(event)
        event.save(force_insert=True)
        transaction.on_commit(functools.partial(_published, "lookup", event.sequence, event), robust=True)
    return event


# Stand-ins for what only the database knows under the lock (the sequence, the time, the
# previous hash): the canonical text is cut at them, and the function joins it up again.
_UNDER_LOCK = {"sequence": "\x01sequence", "created_at": "\x01created_at", "prev_hash": "\x01prev_hash"}
_COLUMNS = (*CHAIN_FIELDS[2:-1], *LATER_CHAIN_FIELDS)
_PLACEHOLDERS = ", ".join(["%s"] * (len(_COLUMNS) + 4))
_APPEND_SQL = f"SELECT * FROM customers_lookupevent_append({_PLACEHOLDERS})"  # noqa: S608 - placeholders only


def _canonical_pieces(event: LookupEvent) -> list[str]:
    """The canonical text before the sequence, between it and the time, between the time
    and the previous hash, and after it; the stand-ins' quotes are cut off with them."""
    values = {name: getattr(event, name) for name in (*CHAIN_FIELDS, *LATER_CHAIN_FIELDS)} | _UNDER_LOCK
    text = chain.canonical_json(chain.lookup_hashed_values(values))
    pieces = []
    for name in ("sequence", "created_at", "prev_hash"):
        before, text = text.split(json.dumps(_UNDER_LOCK[name], ensure_ascii=False), 1)
        pieces.append(before)
    return [*pieces, text]


def _append_in_one_round_trip(fields: dict[str, Any]) -> LookupEvent:
    """PostgreSQL: lock, head, hash and INSERT in one database function (migration 0009),
    one statement, committed when it returns unless the caller holds a transaction open.
    It hashes the same canonical text as ``chain.lookup_hash``; the verifier recomputes it."""
    event = LookupEvent(**fields)
    with connection.cursor() as cursor:
        cursor.execute(_APPEND_SQL, [*(getattr(event, name) for name in _COLUMNS), *_canonical_pieces(event)])
        event.pk, event.sequence, event.created_at, event.prev_hash, event.hash = cursor.fetchone()
    event._state.adding = False
    event._state.db = connection.alias
    return event


def append_review(**fields: Any) -> HistoryReview:
    """Append one review record to its chain. Only ``record_review`` calls this."""
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
        transaction.on_commit(functools.partial(_published, "review", review.sequence, review), robust=True)
    return review


def _published(record: str, sequence: int, row: LookupEvent | HistoryReview) -> None:
    """After the row commits: its line on the audit stream, then a checkpoint if one is due."""
    fields = audit_stream.lookup_fields(row) if record == "lookup" else audit_stream.review_fields(row)
    audit_stream.emit(record, fields)
    if _checkpoint_due(sequence):
        try:
            take_checkpoint()
        except Exception:
            # The lookup stands (its row is written); a missing checkpoint must be seen.
            logger.exception("Automatic audit checkpoint failed; check AUDIT_CHECKPOINT_FILE")


# --- signed statements: checkpoints and prune records ----------------------------------

# No scheduler runs inside the portal: "every M minutes" is checked on each write, per
# process, against the last checkpoint this process took. An idle portal takes none,
# and loses nothing by it: its log has not moved.
_last_checkpoint = time.monotonic()


def _checkpoint_due(sequence: int) -> bool:
    every, minutes = settings.AUDIT_CHECKPOINT_EVERY, settings.AUDIT_CHECKPOINT_MINUTES
    if every and sequence % every == 0:
        return True
    return bool(minutes) and time.monotonic() - _last_checkpoint >= minutes * 60


def _statement_time(value: Any = None) -> str:
    return (value or timezone.now()).astimezone(UTC).isoformat(timespec="microseconds")


def checkpoint() -> dict[str, Any]:
    """A signed statement of both chains' heads, to be kept outside the database."""
    sequence, head_hash = _head()
    review_sequence, review_hash = _review_head()
    return signing.sign(
        {
            "type": "checkpoint",
            "sequence": sequence,
            "hash": head_hash,
            "review_sequence": review_sequence,
            "review_hash": review_hash,
            "time": _statement_time(),
        }
    )


def publish(statement: dict[str, Any]) -> None:
    """Append a statement to AUDIT_CHECKPOINT_FILE (when set) and the audit stream."""
    if settings.AUDIT_CHECKPOINT_FILE:
        line = json.dumps(statement, sort_keys=True, ensure_ascii=False) + "\n"
        # O_APPEND: each line lands whole at the end, whichever process writes it.
        fd = os.open(settings.AUDIT_CHECKPOINT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    audit_stream.emit(statement["type"], {name: value for name, value in statement.items() if name != "type"})


def take_checkpoint() -> dict[str, Any]:
    global _last_checkpoint
    statement = checkpoint()
    publish(statement)
    _last_checkpoint = time.monotonic()
    return statement


def prune_statement(anchor: AuditAnchor) -> dict[str, Any]:
    """What a prune record's signature covers (and what the checkpoint file keeps of it)."""
    statement = {
        "type": "prune",
        "through_sequence": anchor.through_sequence,
        "through_hash": anchor.through_hash,
        "events_pruned": anchor.events_pruned,
        "older_than_days": anchor.older_than_days,
        "username": anchor.username,
        "time": _statement_time(anchor.created_at),
    }
    if anchor.key_id:
        statement.update(key_id=anchor.key_id, signature=anchor.signature)
    else:
        statement["signature"] = anchor.signature
    return statement


def read_statements(path: Path | str) -> list[dict[str, Any]]:
    """The statements in a checkpoint file: JSON lines, or one JSON object (the format
    audit_checkpoint printed before checkpoints were kept as lines)."""
    text = Path(path).read_text()
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        return [whole]
    statements = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            statement = json.loads(line)
        except ValueError:
            raise ValueError(f"line {number} is not JSON") from None
        if not isinstance(statement, dict):
            raise ValueError(f"line {number} is not a statement")
        statements.append(statement)
    return statements


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
    checkpoints: int = 0
    notes: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        if self.ok:
            reviews = f" and {self.reviews} review record{'s' if self.reviews != 1 else ''}" if self.reviews else ""
            return f"OK: {self.events} events{reviews} verified"
        where = "review record" if self.failed_chain == "reviews" else "sequence"
        return f"FAILED at {where} {self.bad_sequence}: {self.reason}"


class _Failed(Exception):
    def __init__(self, sequence: int | None, reason: str, chain_name: str = "events") -> None:
        super().__init__(reason)
        self.sequence, self.reason, self.chain_name = sequence, reason, chain_name


_LEGACY_CHECKPOINT_FIELDS = ("sequence", "hash", "time")
_LEGACY_PRUNE_FIELDS = ("through_sequence", "through_hash")


def _checked_statements(statements: list[dict[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    """The statements whose signatures hold; a forged or altered one fails verification,
    a legacy one without the legacy secret is named and set aside."""
    usable = []
    legacy_unchecked = 0
    for statement in statements:
        kind = statement.get("type", "checkpoint")
        fields = _LEGACY_PRUNE_FIELDS if kind == "prune" else _LEGACY_CHECKPOINT_FIELDS
        result = signing.check(statement, legacy_fields=fields)
        sequence = statement.get("through_sequence" if kind == "prune" else "sequence")
        if result is signing.Check.INVALID:
            raise _Failed(
                sequence,
                f"the {kind} statement's signature is not valid (forged or altered, or signed by a key "
                "not in AUDIT_VERIFY_KEYS)",
            )
        if result is signing.Check.LEGACY_UNCHECKED:
            legacy_unchecked += 1
            continue
        usable.append(statement)
    if legacy_unchecked:
        notes.append(
            f"{legacy_unchecked} legacy HMAC statement{'s' if legacy_unchecked != 1 else ''} in the checkpoint "
            "file not checked and not used (set AUDIT_LEGACY_HMAC_KEY to check them)"
        )
    return usable


def _checked_anchors(notes: list[str]) -> dict[int, AuditAnchor]:
    anchors = {anchor.through_sequence: anchor for anchor in AuditAnchor.objects.all()}
    legacy = []
    for anchor in anchors.values():
        result = signing.check(prune_statement(anchor), legacy_fields=_LEGACY_PRUNE_FIELDS)
        if result is signing.Check.INVALID:
            raise _Failed(
                anchor.through_sequence + 1,
                "the prune record's signature is not valid (forged or altered, or signed by a key "
                "not in AUDIT_VERIFY_KEYS)",
            )
        if result is signing.Check.LEGACY_UNCHECKED:
            legacy.append(anchor.through_sequence)
    if legacy:
        notes.append(
            "legacy prune record(s) through sequence "
            + ", ".join(map(str, sorted(legacy)))
            + " signed with HMAC or not at all: not checked (set AUDIT_LEGACY_HMAC_KEY to check them)"
        )
    return anchors


def verify_chain(
    *, checkpoint: dict[str, Any] | None = None, statements: list[dict[str, Any]] | None = None
) -> Verification:
    """Walk both chains in sequence order against every signed statement given (from
    the checkpoint file); report the first thing that does not hold."""
    notes: list[str] = []
    given = [*([checkpoint] if checkpoint else []), *(statements or [])]
    counts = {"events": 0, "reviews": 0, "checkpoints": 0}
    try:
        usable = _checked_statements(given, notes)
        anchors = _checked_anchors(notes)
        checkpoints = [s for s in usable if s.get("type", "checkpoint") == "checkpoint"]
        counts["checkpoints"] = len(checkpoints)
        _check_prunes_kept([s for s in usable if s.get("type") == "prune"], anchors)
        last_event = _walk_events(anchors, checkpoints, counts)
        last_review = _walk_reviews(checkpoints, counts)
        _check_ends(checkpoints, last_event, last_review)
    except _Failed as failed:
        return Verification(
            False,
            counts["events"],
            failed.sequence,
            failed.reason,
            reviews=counts["reviews"],
            failed_chain=failed.chain_name,
            checkpoints=counts["checkpoints"],
            notes=tuple(notes),
        )
    return Verification(
        True, counts["events"], reviews=counts["reviews"], checkpoints=counts["checkpoints"], notes=tuple(notes)
    )


def _check_prunes_kept(prunes: list[dict[str, Any]], anchors: dict[int, AuditAnchor]) -> None:
    for statement in prunes:
        sequence = statement.get("through_sequence")
        anchor = anchors.get(sequence) if isinstance(sequence, int) else None
        if anchor is None:
            raise _Failed(sequence, "the checkpoint file records a prune that is not in the database (deleted)")
        if anchor.through_hash != statement.get("through_hash"):
            raise _Failed(sequence, "the prune record differs from the one in the checkpoint file")


def _claims(checkpoints: list[dict[str, Any]], sequence_key: str, hash_key: str) -> dict[int, set[str]]:
    claims: dict[int, set[str]] = {}
    for statement in checkpoints:
        sequence = statement.get(sequence_key)
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
            raise _Failed(None, "a checkpoint names no sequence")
        if sequence:
            claims.setdefault(sequence, set()).add(str(statement.get(hash_key)))
    return claims


def _walk_events(anchors: dict[int, AuditAnchor], checkpoints: list[dict[str, Any]], counts: dict[str, int]) -> int:
    claims = _claims(checkpoints, "sequence", "hash")
    # A prune record at a checkpoint's sequence names the hash the checkpoint saw there.
    for sequence, hashes in claims.items():
        anchor = anchors.get(sequence)
        if anchor is not None and hashes != {anchor.through_hash}:
            raise _Failed(
                sequence, "the prune record at the checkpoint's sequence has a different hash (the log was rewritten)"
            )
    expected: int | None = None
    previous_hash = ""
    names = (*CHAIN_FIELDS, *LATER_CHAIN_FIELDS, "hash")
    rows = LookupEvent.objects.order_by("sequence").values_list(*names)
    for row in rows.iterator(chunk_size=5000):
        values = dict(zip(names, row, strict=True))
        sequence = values["sequence"]
        if expected is None:
            anchor = anchors.get(sequence - 1)
            if sequence == 1:
                previous_hash = GENESIS
            elif anchor is not None:
                previous_hash = anchor.through_hash
            else:
                start = max((through for through in anchors if through < sequence), default=0) + 1
                raise _Failed(start, _missing_start(sequence))
        elif sequence != expected:
            raise _Failed(expected, "this event is missing (a row was deleted)")
        if values["prev_hash"] != previous_hash:
            raise _Failed(sequence, "it does not link to the event before it (a row was inserted or reordered)")
        if chain.lookup_hash(values) != values["hash"]:
            raise _Failed(sequence, "its stored values do not match its hash (a row was edited)")
        if sequence in claims and claims[sequence] != {values["hash"]}:
            raise _Failed(sequence, "the event at the checkpoint has a different hash (the log was rewritten)")
        previous_hash, expected = values["hash"], sequence + 1
        counts["events"] += 1
    return max([(expected or 1) - 1, *anchors])


def _walk_reviews(checkpoints: list[dict[str, Any]], counts: dict[str, int]) -> int:
    claims = _claims(
        [s for s in checkpoints if "review_sequence" in s], "review_sequence", "review_hash"
    )  # legacy checkpoints predate the review chain
    previous_hash, expected = GENESIS, 1
    names = (*chain.REVIEW_FIELDS, "hash")
    for row in HistoryReview.objects.order_by("sequence").values_list(*names).iterator(chunk_size=5000):
        values = dict(zip(names, row, strict=True))
        sequence = values["sequence"]
        if sequence != expected:
            raise _Failed(expected, "this review record is missing (a row was deleted)", "reviews")
        if values["prev_hash"] != previous_hash:
            raise _Failed(
                sequence, "it does not link to the record before it (a row was inserted or reordered)", "reviews"
            )
        if chain.review_hash(values) != values["hash"]:
            raise _Failed(sequence, "its stored values do not match its hash (a row was edited)", "reviews")
        if sequence in claims and claims[sequence] != {values["hash"]}:
            raise _Failed(sequence, "the record at the checkpoint has a different hash (rewritten)", "reviews")
        previous_hash, expected = values["hash"], sequence + 1
        counts["reviews"] += 1
    return expected - 1


def _check_ends(checkpoints: list[dict[str, Any]], last_event: int, last_review: int) -> None:
    """A checkpoint beyond the end of a chain: rows were cut off the end, or the table emptied."""
    for statement in checkpoints:
        if statement["sequence"] > last_event:
            raise _Failed(
                statement["sequence"],
                f"the log ends at sequence {last_event}, before this checkpoint (rows removed from the end, "
                "or the table emptied)",
            )
        review_sequence = statement.get("review_sequence")
        if isinstance(review_sequence, int) and review_sequence > last_review:
            raise _Failed(
                review_sequence,
                f"the review records end at {last_review}, before this checkpoint (records removed from the end, "
                "or the table emptied)",
                "reviews",
            )


def _missing_start(first_sequence: int) -> str:
    return f"the log starts at sequence {first_sequence} and no prune explains the rows before it (rows deleted)"


def checkpoint_file_statements() -> list[dict[str, Any]]:
    """The statements in AUDIT_CHECKPOINT_FILE, if it is set and exists."""
    path = settings.AUDIT_CHECKPOINT_FILE
    if not path or not Path(path).exists():
        return []
    return read_statements(path)


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


def prune(*, older_than_days: int, username: str) -> AuditAnchor | None:
    """Delete events older than ``older_than_days`` through the one privileged path.

    First, inside the chain's lock, the whole remaining log is verified (from the latest
    prune record, against every statement in AUDIT_CHECKPOINT_FILE); if it does not hold,
    PruneRefused and nothing is deleted, so a backdated, edited row cannot be pruned away.
    The database refuses DELETE unless the gate row exists, and it only ever exists
    inside this transaction. The signed prune record says where the chain now starts.
    """
    cutoff = timezone.now() - timezone.timedelta(days=older_than_days)
    table = connection.ops.quote_name(LookupEvent._meta.db_table)
    try:
        statements = checkpoint_file_statements()
    except (OSError, ValueError) as exc:
        raise PruneRefused(f"Nothing was pruned: cannot read AUDIT_CHECKPOINT_FILE ({exc}).") from None
    with transaction.atomic():
        _lock_chain()
        verification = verify_chain(statements=statements)
        if not verification.ok:
            raise PruneRefused(f"Nothing was pruned: the audit log does not verify. {verification}")
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
            created_at=timezone.now(),
            username=username,
            through_sequence=through_sequence,
            through_hash=through_hash,
            events_pruned=deleted,
            older_than_days=older_than_days,
        )
        signed = signing.sign({k: v for k, v in prune_statement(anchor).items() if k != "signature"})
        anchor.key_id, anchor.signature = signed["key_id"], signed["signature"]
        anchor.save()
        transaction.on_commit(functools.partial(_published_prune, anchor), robust=True)
    return anchor


def _published_prune(anchor: AuditAnchor) -> None:
    publish(prune_statement(anchor))
    take_checkpoint()
