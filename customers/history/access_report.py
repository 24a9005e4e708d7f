"""The customer access report: "who has seen my details?" for one Solar Proof customer.

Every lookup whose result showed the customer (any project, channel or member of staff),
the lookups of the same projects that showed no customer (not found, errors, refusals),
and a summary. Lookups of those projects that showed *another* customer are left out:
they are that person's record, not this one's. Read up to one sequence (the chain's head
when asked), so the page, the signed statement and the review record agree.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from customers.audit import heads
from customers.audit.chain import canonical_time
from customers.models import LookupEvent

# Solar Proof's IDs fit PostgreSQL's bigint; longer digit strings are not IDs.
MAX_ID = 2**63 - 1


class ReportRefused(Exception):
    """Bad input or nothing to report: the message is safe to show an admin as it is."""


def parse_id(text: str, what: str) -> int:
    """A customer or project ID from what an admin typed (``#2143`` and spaces allowed)."""
    raw = text.strip().lstrip("#").strip()
    # The length first: int() refuses (ValueError) a string of thousands of digits.
    if len(raw) > 19 or not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise ReportRefused(f"A {what} ID is a whole number such as 2143, not “{text.strip()[:40]}”.")
    return int(raw)


def customer_of_project(project_id: int) -> int:
    """The customer the log last recorded for a project (the newest lookup that showed one)."""
    events = LookupEvent.objects.filter(project_id=project_id)
    customer_id = (
        events.filter(customer_id__isnull=False).order_by("-sequence").values_list("customer_id", flat=True).first()
    )
    if customer_id is not None:
        return customer_id
    if events.exists():
        raise ReportRefused(
            f"No lookup of project {project_id} showed a customer (not found, errors or refusals only), "
            "so the log records no customer for it."
        )
    raise ReportRefused(f"Project {project_id} has never been looked up: the log records no customer for it.")


@dataclass(frozen=True)
class StaffAccess:
    username: str
    lookups: int
    first: datetime
    last: datetime


@dataclass(frozen=True)
class AccessReport:
    customer_id: int
    asked_project: int | None
    projects: list[int]
    shown: list[LookupEvent]  # oldest first
    not_shown: list[LookupEvent]  # oldest first
    staff: list[StaffAccess]
    flags: dict[int, list[str]]  # by sequence
    covers_from: tuple[int, datetime | None]  # the oldest event the log holds
    covers_to: tuple[int, str]  # the head the report was read at: sequence and hash
    generated_at: datetime = field(default_factory=timezone.now)

    @property
    def row_count(self) -> int:
        return len(self.shown) + len(self.not_shown)

    @property
    def first_access(self) -> datetime | None:
        return self.shown[0].created_at if self.shown else None

    @property
    def last_access(self) -> datetime | None:
        return self.shown[-1].created_at if self.shown else None

    def rows(self) -> list[LookupEvent]:
        """Both lists as one, in the chain's order: the signed statement's rows."""
        return sorted([*self.shown, *self.not_shown], key=lambda event: event.sequence)

    def flagged(self) -> list[tuple[LookupEvent, list[str]]]:
        return [(event, self.flags[event.sequence]) for event in self.shown if event.sequence in self.flags]

    def statement_header(self, *, generated_by: str, company: str) -> dict[str, Any]:
        """What the signed statement says about itself, besides its rows and checkpoint."""
        first_sequence, first_time = self.covers_from
        return {
            "report_id": uuid.uuid4().hex,
            "company": company,
            "customer_id": self.customer_id,
            "asked_for": {"project": self.asked_project} if self.asked_project else {"customer": self.customer_id},
            "projects": self.projects,
            "generated_at": canonical_time(self.generated_at),
            "generated_by": generated_by,
            "covers": {
                "from_sequence": first_sequence,
                "from_time": canonical_time(first_time) if first_time else None,
                "to_sequence": self.covers_to[0],
            },
            "rows_shown": len(self.shown),
            "rows_not_shown": len(self.not_shown),
            "row_count": self.row_count,
            "flags": {str(sequence): reasons for sequence, reasons in sorted(self.flags.items())},
        }


def access_report_build(
    *, customer_id: int, asked_project: int | None = None, through: int | None = None
) -> AccessReport:
    """The report for ``customer_id`` over every event up to sequence ``through`` (default:
    the head now). Refuses, with a message, a customer no lookup ever showed."""
    head_sequence, head_hash = heads.head()
    through = head_sequence if through is None else through
    head_hash = head_hash if through == head_sequence else _hash_at(through)
    upto = LookupEvent.objects.filter(sequence__lte=through)
    shown = list(upto.filter(customer_id=customer_id).order_by("sequence"))
    if not shown:
        raise ReportRefused(f"No lookup in the log showed customer {customer_id}: there is nothing to report.")
    projects = sorted({event.project_id for event in shown} | ({asked_project} if asked_project else set()))
    not_shown = list(upto.filter(project_id__in=projects, customer_id__isnull=True).order_by("sequence"))
    oldest = LookupEvent.objects.order_by("sequence").values_list("sequence", "created_at").first()
    return AccessReport(
        customer_id=customer_id,
        asked_project=asked_project,
        projects=projects,
        shown=shown,
        not_shown=not_shown,
        staff=_staff(shown),
        flags=_flags([*shown, *not_shown]),
        covers_from=oldest or (through, None),
        covers_to=(through, head_hash),
    )


def _hash_at(sequence: int) -> str:
    return LookupEvent.objects.filter(sequence=sequence).values_list("hash", flat=True).first() or ""


def _staff(shown: list[LookupEvent]) -> list[StaffAccess]:
    by_user: dict[str, list[LookupEvent]] = defaultdict(list)
    for event in shown:
        by_user[event.username].append(event)
    return [
        StaffAccess(username, len(events), events[0].created_at, events[-1].created_at)
        for username, events in sorted(by_user.items())
    ]


def _flags(events: list[LookupEvent]) -> dict[int, list[str]]:
    """The history's unusual-activity rules, per row: a lookup outside business hours, and
    one in an hour when its user looked up more distinct projects than the alert allows."""
    tz = timezone.get_current_timezone()
    start, end = settings.AUDIT_BUSINESS_HOURS
    threshold = settings.AUDIT_ALERT_DISTINCT_PROJECTS_PER_HOUR
    flags: dict[int, list[str]] = defaultdict(list)
    hours: dict[tuple[int, datetime], list[int]] = defaultdict(list)
    for event in events:
        local = timezone.localtime(event.created_at, tz)
        if not start <= local.time() < end:
            flags[event.sequence].append(f"outside business hours ({start:%H:%M}–{end:%H:%M})")
        hours[(event.user_id, local.replace(minute=0, second=0, microsecond=0))].append(event.sequence)
    for user_id, hour, projects in _busy_hours(list(hours), tz, threshold):
        for sequence in hours[(user_id, hour)]:
            flags[sequence].append(
                f"its user looked up {projects} different projects that hour (alert above {threshold})"
            )
    return dict(flags)


def _busy_hours(pairs: list[tuple[int, datetime]], tz: Any, threshold: int) -> list[tuple[int, datetime, int]]:
    """(user, hour, distinct projects) for each pair above the threshold: one query per 200 pairs."""
    busy = []
    for offset in range(0, len(pairs), 200):
        windows = [
            Q(user_id=user_id, created_at__gte=hour, created_at__lt=hour + timedelta(hours=1))
            for user_id, hour in pairs[offset : offset + 200]
        ]
        rows = (
            LookupEvent.objects.filter(reduce(or_, windows))
            .annotate(hour=TruncHour("created_at", tzinfo=tz))
            .values("user_id", "hour")
            .annotate(projects=Count("project_id", distinct=True))
            .filter(projects__gt=threshold)
            .values_list("user_id", "hour", "projects")
        )
        busy += [(user_id, timezone.localtime(hour, tz), projects) for user_id, hour, projects in rows]
    return busy
