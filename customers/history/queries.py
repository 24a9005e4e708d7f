"""Reading the lookup history: filters, keyset pages, the 30-day summary, a user's own
recent lookups and the record of reviews. Knows users and the database, not HTML."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import ExtractHour, ExtractMinute, TruncDate, TruncHour
from django.utils import timezone

from customers.models import HistoryReview, LookupEvent

PAGE_SIZE = 50

SUMMARY_DAYS = 30
SUMMARY_CACHE_SECONDS = 60


@dataclass(frozen=True)
class Filters:
    user: str = ""
    project: int | None = None
    outcome: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def as_record(self) -> dict[str, Any]:
        """What a review record stores: only the filters that were set."""
        values = {
            "user": self.user,
            "project": self.project,
            "outcome": self.outcome,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
        }
        return {key: value for key, value in values.items() if value not in ("", None)}


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def filter_events(filters: Filters) -> QuerySet[LookupEvent]:
    events = LookupEvent.objects.all()
    if filters.user:
        events = events.filter(username=filters.user)
    if filters.project is not None:
        events = events.filter(project_id=filters.project)
    if filters.outcome:
        events = events.filter(outcome=filters.outcome)
    # Dates are days in the portal's time zone; "to" includes the whole of its day.
    if filters.date_from:
        events = events.filter(created_at__gte=_start_of(filters.date_from))
    if filters.date_to:
        events = events.filter(created_at__lt=_start_of(filters.date_to + timedelta(days=1)))
    return events


@dataclass(frozen=True)
class Page:
    events: list[LookupEvent]
    newer: int | None  # pass as ?after= for the page of newer events
    older: int | None  # pass as ?before= for the page of older events


def page_of(events: QuerySet[LookupEvent], *, before: int | None = None, after: int | None = None) -> Page:
    """Keyset pages, newest first: one indexed range scan each, and never a COUNT(*)."""
    if after is not None:
        rows = list(events.filter(sequence__gt=after).order_by("sequence")[: PAGE_SIZE + 1])
        has_newer = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE][::-1]
        has_older = bool(rows)
    else:
        if before is not None:
            events = events.filter(sequence__lt=before)
        rows = list(events.order_by("-sequence")[: PAGE_SIZE + 1])
        has_older = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        has_newer = before is not None and bool(rows)
    return Page(
        events=rows,
        newer=rows[0].sequence if rows and has_newer else None,
        older=rows[-1].sequence if rows and has_older else None,
    )


# --- summary -----------------------------------------------------------------------


@dataclass(frozen=True)
class Unusual:
    username: str
    reason: str


@dataclass(frozen=True)
class Summary:
    per_day: list[tuple[date, int]]
    today: int
    last_7_days: int
    busiest: list[tuple[str, int]]
    unusual: list[Unusual]


def summary() -> Summary:
    """A small picture of the last 30 days, cached briefly: it reads many rows."""
    key = f"history:summary:v1:{timezone.localdate().isoformat()}"
    try:
        cached = cache.get(key)
    except Exception:
        cached = None
    if cached is not None:
        return cached
    result = _compute_summary()
    with contextlib.suppress(Exception):  # a cache outage only costs a recomputation
        cache.set(key, result, timeout=SUMMARY_CACHE_SECONDS)
    return result


def _compute_summary() -> Summary:
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    first_day = today - timedelta(days=SUMMARY_DAYS - 1)
    recent = LookupEvent.objects.filter(created_at__gte=_start_of(first_day))
    counts = dict(
        recent.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    per_day = [
        (first_day + timedelta(days=offset), counts.get(first_day + timedelta(days=offset), 0))
        for offset in range(SUMMARY_DAYS)
    ]
    week = LookupEvent.objects.filter(created_at__gte=_start_of(today - timedelta(days=6)))
    busiest = list(
        week.values("username").annotate(n=Count("id")).order_by("-n", "username").values_list("username", "n")[:5]
    )
    return Summary(
        per_day=per_day,
        today=per_day[-1][1],
        last_7_days=sum(n for _, n in per_day[-7:]),
        busiest=busiest,
        unusual=_unusual(week, tz),
    )


def _unusual(week: QuerySet[LookupEvent], tz: Any) -> list[Unusual]:
    threshold = settings.AUDIT_ALERT_DISTINCT_PROJECTS_PER_HOUR
    flagged: dict[str, list[str]] = {}
    heavy = (
        week.annotate(hour=TruncHour("created_at", tzinfo=tz))
        .values("username", "hour")
        .annotate(projects=Count("project_id", distinct=True))
        .filter(projects__gt=threshold)
        .values_list("username", "projects")
    )
    peaks: dict[str, int] = {}
    for username, projects in heavy:
        peaks[username] = max(projects, peaks.get(username, 0))
    for username, peak in peaks.items():
        flagged.setdefault(username, []).append(f"{peak} different projects in one hour (alert above {threshold})")
    start, end = settings.AUDIT_BUSINESS_HOURS
    outside = (
        week.annotate(h=ExtractHour("created_at", tzinfo=tz), m=ExtractMinute("created_at", tzinfo=tz))
        .filter(
            Q(h__lt=start.hour)
            | Q(h=start.hour, m__lt=start.minute)
            | Q(h__gt=end.hour)
            | Q(h=end.hour, m__gte=end.minute)
        )
        .values("username")
        .annotate(n=Count("id"))
        .values_list("username", "n")
    )
    for username, n in outside:
        flagged.setdefault(username, []).append(f"{n} lookup{'s' if n != 1 else ''} outside {start:%H:%M}–{end:%H:%M}")
    return [Unusual(username, "; ".join(reasons)) for username, reasons in sorted(flagged.items())]


# --- the signed-in user's own recent lookups, and the record of reviews -----------------


def recent_lookups(user_id: int, *, count: int) -> list[dict[str, Any]]:
    """The user's last ``count`` distinct projects, newest first: project, outcome and the
    time of the latest lookup of each. Plain SQL on the (user, -sequence) index: the ORM's
    query building cost more than the read."""
    table = connection.ops.quote_name(LookupEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT project_id, outcome, created_at FROM {table} "  # noqa: S608 - a constant table name
            "WHERE user_id = %s ORDER BY sequence DESC LIMIT %s",
            [user_id, count * 3],
        )
        rows = cursor.fetchall()
    recent: dict[int, dict[str, Any]] = {}
    for project, outcome, at in rows:
        recent.setdefault(project, {"project_id": project, "outcome": outcome, "created_at": _aware(at)})
        if len(recent) == count:
            break
    return list(recent.values())


def _aware(value: datetime | str) -> datetime:
    # SQLite hands back the stored text, or a naive datetime, in UTC; PostgreSQL an aware one.
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def reviews_page(*, before: int | None) -> tuple[list[HistoryReview], int | None]:
    """One page of review records, newest first, and the sequence to ask for the next
    (older) page with, or None on the last page."""
    reviews = HistoryReview.objects.order_by("-sequence")
    if before is not None:
        reviews = reviews.filter(sequence__lt=before)
    rows = list(reviews[: PAGE_SIZE + 1])
    older = rows[PAGE_SIZE - 1].sequence if len(rows) > PAGE_SIZE else None
    return rows[:PAGE_SIZE], older
