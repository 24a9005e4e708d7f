"""The CSV export of the lookup history, streamed in batches. DESIGN.md fixes its columns."""

from __future__ import annotations

import csv
from collections.abc import Iterator

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
