"""The CSV export of the lookup history, streamed in batches. DESIGN.md fixes its columns."""

from __future__ import annotations

import csv
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.db.models import Max, QuerySet
from django.utils import timezone

from customers.history.queries import Filters, filter_events
from customers.models import LookupEvent

# DESIGN.md: the first ten never move (tools read them by position); later columns are
# only ever added at the end.
EXPORT_COLUMNS = (
    "sequence",
    "time",
    "username",
    "project_id",
    "outcome",
    "customer_id",
    "channel",
    "ip",
    "request_id",
    "duration_ms",
    "auth_method",
)
REASON_COLUMN = "reason"


def export_columns() -> tuple[str, ...]:
    """The CSV's columns: ``reason`` only while LOOKUP_REASON is not off."""
    return (*EXPORT_COLUMNS, REASON_COLUMN) if settings.LOOKUP_REASON != "off" else EXPORT_COLUMNS


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: object) -> object:
    # A spreadsheet runs a cell that starts with one of these as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_snapshot(filters: Filters) -> tuple[QuerySet[LookupEvent], int]:
    """The events to export and how many, fixed at the current head so the count in
    the review record matches the rows streamed even while lookups continue."""
    head = LookupEvent.objects.aggregate(head=Max("sequence"))["head"] or 0
    events = filter_events(filters).filter(sequence__lte=head)
    return events, events.count()


EXPORT_BATCH = 1000


def export_csv(events: QuerySet[LookupEvent]) -> Iterator[str]:
    """CSV text, streamed from a server-side cursor in batches of rows: memory stays flat
    however many rows."""
    writer = csv.writer(_Echo())
    columns = export_columns()
    yield writer.writerow(columns)
    tz = timezone.get_current_timezone()
    fields = [column if column != "time" else "created_at" for column in columns]
    with_reason = REASON_COLUMN in columns
    rows = events.order_by("sequence").values_list(*fields).iterator(chunk_size=2000)
    batch: list[str] = []
    # Outcome, channel and sign-in method are our own words and the IP is validated;
    # only the username, the request ID and the reason could start a spreadsheet formula.
    for sequence, time_, username, project, outcome, customer, channel, ip, request_id, duration, auth, *rest in rows:
        row = [sequence, time_.astimezone(tz).isoformat(), _cell(username), project, outcome, customer, channel, ip,
               _cell(request_id), duration, auth]  # fmt: skip
        if with_reason:
            row.append(_cell(rest[0]))
        batch.append(writer.writerow(row))
        if len(batch) == EXPORT_BATCH:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


# --- how many exports this process sends at once ----------------------------------------
#
# An export holds its request's pooled connection until the last byte is sent (the
# server-side cursor above), however slowly the admin's browser downloads: a worker's
# pool (DATABASE_POOL_MAX) would otherwise go to as many slow downloads, and its lookups
# get none (PoolTimeout, the outage 503). settings.HISTORY_EXPORTS_AT_ONCE bounds them per
# process; None (no pool: every thread has its own connection) bounds nothing.

_slots_lock = threading.Lock()
_sending = 0


def sending() -> int:
    """Exports this process is sending now."""
    return _sending


def take_slot() -> Callable[[], None] | None:
    """A slot for one export, or None when this process already sends as many as it may.
    Returns the slot's release, which gives it back once however often it is called."""
    global _sending
    limit = settings.HISTORY_EXPORTS_AT_ONCE
    with _slots_lock:
        if limit is not None and _sending >= limit:
            return None
        _sending += 1
    released = threading.Event()

    def release() -> None:
        global _sending
        with _slots_lock:
            if not released.is_set():
                released.set()
                _sending -= 1

    return release


class HeldWhileSent:
    """The export's chunks, its slot held until the response is closed: the WSGI server
    closes it when the last chunk is sent, or when the download is abandoned (Django's
    response closes what it streams). A response dropped unclosed gives it back when
    collected."""

    def __init__(self, chunks: Iterable[str], release: Callable[[], None]) -> None:
        self._chunks = iter(chunks)
        self._release = release
        weakref.finalize(self, release)

    def __iter__(self) -> Iterator[str]:
        return self._chunks

    def close(self) -> None:
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            self._release()
