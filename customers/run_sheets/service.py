"""An installer's run sheet: the day's projects, each looked up through the audited service.

The lookups run side by side, one thread each, so ten projects cost about one upstream
answer, and the whole sheet stays inside the one time budget (``SOLARPROOF_TIMEOUT``)
that a single lookup has. Each thread goes through ``look_up_customer`` exactly as a
single lookup does (role, rate limit, cache, one audit row), with the sheet's request
ID. A project that fails, even by an error of ours, fails alone in its own place.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.db import connections
from django.utils import timezone

from accounts.models import AuthMethod
from customers import lookups
from customers.audit import log as audit_log
from customers.forms import RUN_SHEET_MAX
from customers.models import HistoryReview

logger = logging.getLogger(__name__)

_SESSION_KEY = "run_sheet"


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
    """Every project of the sheet through ``look_up_customer``, concurrently, in order.

    Raises ``NotPermitted`` (after each project's refusal is audited) for a user without
    a role, as a single lookup does.
    """
    if not 1 <= len(project_ids) <= RUN_SHEET_MAX:
        raise lookups.InvalidProjectId(f"A run sheet holds from 1 to {RUN_SHEET_MAX} projects.")
    for project_id in project_ids:
        lookups.validate_project_id(project_id)
    # Fills the user's permission cache here, so the threads share it instead of each
    # asking the database again.
    user.has_perm(lookups.PERMISSION)

    def job(project_id: int) -> SheetEntry:
        try:
            result = lookups.look_up_customer(
                user=user,
                project_id=project_id,
                ip=ip,
                user_agent=user_agent,
                request_id=request_id,
                auth_method=auth_method,
                reason=reason,
            )
            return SheetEntry(project_id, result)
        except lookups.NotPermitted:
            raise
        except lookups.AuditUnavailable as exc:
            return SheetEntry(project_id, problem=str(exc))
        except Exception:
            logger.exception("Run sheet: the lookup of project=%s failed", project_id)
            return SheetEntry(project_id, problem="This project could not be looked up. Try it again on its own.")
        finally:
            # A thread's database connection is its own and would otherwise stay open
            # until the server restarts: one per thread, per sheet.
            connections.close_all()

    # Each thread runs in a copy of this request's context, so its log lines carry the
    # request ID.
    with ThreadPoolExecutor(max_workers=len(project_ids), thread_name_prefix="run-sheet") as pool:
        futures = [pool.submit(contextvars.copy_context().run, job, project_id) for project_id in project_ids]
    refusals = [future.exception() for future in futures if future.exception() is not None]
    if refusals:
        raise refusals[0]  # only NotPermitted gets out of a job
    return [future.result() for future in futures]


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
