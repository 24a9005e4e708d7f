"""Writing to the tamper-evident audit chains: the one way a lookup event or a review record is written.

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

import json
import logging
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AuthMethod
from customers import access
from customers.audit import checkpoints, group_commit, heads
from customers.audit import stream as audit_stream
from customers.models import Channel, HistoryReview, LookupEvent
from customers.outcomes import Outcome

logger = logging.getLogger(__name__)


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
        role=access.role_at_the_time(user)[: LookupEvent._meta.get_field("role").max_length],
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
    """Append one event to the chain. Only ``record_lookup`` calls this. On PostgreSQL,
    outside a transaction, the event is committed when this returns, in one transaction
    with any other events this process's threads appended at the same moment
    (customers/audit/group_commit.py); inside the caller's transaction, in that one."""
    fields = {**fields, "ip": heads.IP_FIELD.get_prep_value(fields.get("ip"))}
    if connection.vendor == "postgresql":
        if connection.in_atomic_block:
            return _append_all_and_publish([fields])[0]
        return _appends.append(fields)
    with transaction.atomic():
        heads.lock_chain()
        sequence, prev_hash = heads.head()
        event = LookupEvent(
            sequence=sequence + 1,
            prev_hash=prev_hash,
            # Taken under the lock, so time order and sequence order agree.
            created_at=timezone.now(),
            **fields,
        )
        event.hash = heads.hash_of(event)
        event.save(force_insert=True)
        _publish_after_commit("lookup", event.sequence, event)
    return event


def _append_all_and_publish(batch: list[dict[str, Any]]) -> list[LookupEvent]:
    """PostgreSQL: the append function once per row, in order, sent in one round trip
    (psycopg's pipeline); each row's stream line once the transaction commits (at once,
    outside one)."""
    events = [LookupEvent(**fields) for fields in batch]
    with connection.cursor() as cursor, connection.wrap_database_errors:
        statement = cursor.cursor  # psycopg's own: executemany with returning=True
        statement.executemany(
            _APPEND_SQL, [[getattr(event, name) for name in _COLUMNS] for event in events], returning=True
        )
        for index, event in enumerate(events):
            if index:
                statement.nextset()
            event.pk, event.sequence, event.created_at, event.prev_hash, event.hash = statement.fetchone()
    for event in events:
        event._state.adding = False
        event._state.db = connection.alias
        _publish_after_commit("lookup", event.sequence, event)
    return events


# This process's appends on PostgreSQL, grouped (customers/audit/group_commit.py).
_appends = group_commit.GroupCommit(_append_all_and_publish)


# PostgreSQL: the functions of migration 0010, run as the tables' owner (the app's role may
# not INSERT). They take the lock, the sequence, the time and the previous hash, and hash
# the row in SQL; the verifier recomputes every hash in Python.
_COLUMNS = (*heads.CHAIN_FIELDS[2:-1], *heads.LATER_CHAIN_FIELDS)
_APPEND_SQL = f"SELECT * FROM customers_lookupevent_append({', '.join(['%s'] * len(_COLUMNS))})"  # noqa: S608
_REVIEW_COLUMNS = ("user_id", "username", "kind", "detail", "rows", "ip", "request_id")
_APPEND_REVIEW_SQL = "SELECT * FROM customers_historyreview_append(%s, %s, %s, %s::jsonb, %s, %s, %s)"


def _append_review_in_one_round_trip(fields: dict[str, Any]) -> HistoryReview:
    review = HistoryReview(**fields)
    values = [getattr(review, name) for name in _REVIEW_COLUMNS]
    values[_REVIEW_COLUMNS.index("detail")] = json.dumps(review.detail, ensure_ascii=False)
    with connection.cursor() as cursor:
        cursor.execute(_APPEND_REVIEW_SQL, values)
        review.pk, review.sequence, review.created_at, review.prev_hash, review.hash = cursor.fetchone()
    review._state.adding = False
    review._state.db = connection.alias
    return review


def append_review(**fields: Any) -> HistoryReview:
    """Append one review record to its chain. Only ``record_review`` calls this."""
    # Stored as JSON and read back as JSON: hash what a reader will see.
    fields["detail"] = json.loads(json.dumps(fields.get("detail") or {}))
    if connection.vendor == "postgresql":
        fields = {**fields, "ip": heads.IP_FIELD.get_prep_value(fields.get("ip"))}
        review = _append_review_in_one_round_trip(fields)
        _publish_after_commit("review", review.sequence, review)
        return review
    with transaction.atomic():
        heads.lock(heads.REVIEW_LOCK_KEY)
        sequence, prev_hash = heads.review_head()
        review = HistoryReview(
            sequence=sequence + 1,
            prev_hash=prev_hash,
            created_at=timezone.now(),
            **{**fields, "ip": heads.IP_FIELD.get_prep_value(fields.get("ip"))},
        )
        review.hash = heads.review_hash_of(review)
        review.save(force_insert=True)
        _publish_after_commit("review", review.sequence, review)
    return review


def _publish_after_commit(record: str, sequence: int, row: LookupEvent | HistoryReview) -> None:
    """``_published`` once the row's transaction commits (at once outside one). Robust: the
    row is written, so a failure there is logged and the lookup stands. A named function,
    not a ``functools.partial``: Django names the callback in that log line, and a partial
    has no name to give (an AttributeError in place of the line, after the commit)."""

    def publish() -> None:
        _published(record, sequence, row)

    transaction.on_commit(publish, robust=True)


def _published(record: str, sequence: int, row: LookupEvent | HistoryReview) -> None:
    """After the row commits: its line on the audit stream, then a checkpoint if one is due."""
    fields = audit_stream.lookup_fields(row) if record == "lookup" else audit_stream.review_fields(row)
    audit_stream.emit(record, fields)
    if checkpoints.checkpoint_due(sequence):
        try:
            checkpoints.take_checkpoint()
        except Exception:
            # The lookup stands (its row is written); a missing checkpoint must be seen.
            logger.exception("Automatic audit checkpoint failed; check AUDIT_CHECKPOINT_FILE")
