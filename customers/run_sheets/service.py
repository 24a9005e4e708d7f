"""An installer's run sheet: the day's projects, each looked up through the audited service.

The lookups run side by side in one pool of threads per process, shared by every sheet
(``RUN_SHEET_THREADS``, by default the bulkhead's Solar Proof slots: more threads would
only wait for a slot). Its threads ask the cache and Solar Proof and never the database:
each project's audit row is written by the sheet's own request
(``lookups.look_up_customers``). So sheets cost no database connections beyond their
requests' own, and gunicorn's workers x threads stays the most the portal can open,
whatever the sheets do. A quiet sheet takes about one upstream answer; in a start-of-day
rush the jobs queue for the pool and every one still gets its answer. A project that
fails, even by an error of ours, fails alone in its own place.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.utils import timezone

from accounts.models import AuthMethod
from customers import lookups
from customers.audit import log as audit_log
from customers.forms import RUN_SHEET_MAX
from customers.models import HistoryReview

logger = logging.getLogger(__name__)

_SESSION_KEY = "run_sheet"
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def sheet_pool() -> ThreadPoolExecutor:
    """The process's one pool for sheets, made at first use: in the worker, after
    gunicorn's fork (a pool made before it would have no threads in the child)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.RUN_SHEET_THREADS, thread_name_prefix="run-sheet")
        return _pool


@dataclass(frozen=True)
class SheetEntry:
    """One job of the sheet: its lookup's result, or why there is none (``problem``)."""

    project_id: int
    result: lookups.LookupResult | None = None
    problem: str = ""


def look_up_run_sheet(
    *,
    user: Any,
    project_ids: Sequence[int],
    ip: str | None = None,
    user_agent: str = "",
    request_id: str = "",
    auth_method: AuthMethod | None = None,
    reason: str | None = None,
) -> list[SheetEntry]:
    """Every project of the sheet through ``lookups.look_up_customers``, in order.

    Raises ``NotPermitted`` (after each project's refusal is audited) for a user without
    a role, as a single lookup does.
    """
    if not 1 <= len(project_ids) <= RUN_SHEET_MAX:
        raise lookups.InvalidProjectId(f"A run sheet holds from 1 to {RUN_SHEET_MAX} projects.")
    answers = lookups.look_up_customers(
        user=user,
        project_ids=project_ids,
        pool=sheet_pool(),
        ip=ip,
        user_agent=user_agent,
        request_id=request_id,
        auth_method=auth_method,
        reason=reason,
    )
    return [_entry(project_id, answer) for project_id, answer in zip(project_ids, answers, strict=True)]


def _entry(project_id: int, answer: lookups.LookupResult | Exception) -> SheetEntry:
    if isinstance(answer, lookups.LookupResult):
        return SheetEntry(project_id, answer)
    if isinstance(answer, lookups.AuditUnavailable):
        return SheetEntry(project_id, problem=str(answer))
    return SheetEntry(project_id, problem="This project could not be looked up. Try it again on its own.")


def record_kept_sheet(*, user: Any, project_ids: Sequence[int], ip: str | None, request_id: str) -> HistoryReview:
    """A sheet's customers are leaving for a device's storage: on the review record, by
    project (no personal details), beside the lookups that fetched them (same request ID)."""
    return audit_log.record_review(
        user=user,
        kind=HistoryReview.Kind.KEPT_ON_DEVICE,
        detail={"projects": list(project_ids)},
        rows=len(project_ids),
        ip=ip,
        request_id=request_id,
    )


# --- today's sheet, built one lookup at a time (kept in the session, not the browser) ---


def _today() -> str:
    return timezone.localdate().isoformat()


def todays_projects(session: SessionBase) -> list[int]:
    """The projects added to today's sheet from result pages; yesterday's are gone."""
    kept = session.get(_SESSION_KEY) or {}
    if kept.get("day") != _today():
        return []
    return [project_id for project_id in kept.get("projects", []) if isinstance(project_id, int)]


def add_to_todays_sheet(session: SessionBase, *, project_id: int) -> list[int]:
    lookups.validate_project_id(project_id)
    projects = todays_projects(session)
    if project_id not in projects:
        if len(projects) >= RUN_SHEET_MAX:
            raise ValueError(f"Today's run sheet already holds {RUN_SHEET_MAX} projects.")
        projects.append(project_id)
    session[_SESSION_KEY] = {"day": _today(), "projects": projects}
    return projects
