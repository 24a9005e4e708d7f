"""The lookup workflow: the only way to customer data.

``look_up_customer`` validates, checks the role, applies the per-user rate limit,
uses the short cache, asks Solar Proof, writes exactly one audit row, and only then
returns the customer. If the audit row cannot be written, nobody sees the customer.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import functools
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import Error as DatabaseFailure
from django.utils import timezone

from accounts.models import AuthMethod
from customers import access
from customers.audit import log as audit_log
from customers.models import Channel, LookupEvent
from customers.outcomes import Outcome
from customers.ratelimit import hit_rate_limit
from customers.upstream import errors, guard, sandbox, solarproof
from solarproof_portal import database, metrics

logger = logging.getLogger(__name__)

PERMISSION = access.LOOK_UP_PERMISSION
MAX_PROJECT_ID = 2**32 - 1


class InvalidProjectId(ValueError):
    pass


class NotPermitted(access.RoleRequired):
    def __init__(self, message: str) -> None:
        super().__init__(access.LOOK_UP_ROLES, message)


class AuditUnavailable(Exception):
    """The audit row could not be written, so the lookup's answer is withheld."""


@dataclass(frozen=True)
class LookupResult:
    project_id: int
    outcome: Outcome
    customer: solarproof.Customer | None = None
    message: str = ""
    cache_hit: bool = False
    fetched_at: datetime | None = None
    event: LookupEvent | None = field(default=None, compare=False)

    @property
    def found(self) -> bool:
        return self.outcome == Outcome.FOUND


def validate_project_id(project_id: object) -> int:
    if isinstance(project_id, bool) or not isinstance(project_id, int) or not 1 <= project_id <= MAX_PROJECT_ID:
        raise InvalidProjectId(f"A project ID is a whole number from 1 to {MAX_PROJECT_ID}.")
    return project_id


def look_up_customer(
    *,
    user: Any,
    project_id: int,
    channel: Channel = Channel.WEB,
    ip: str | None = None,
    user_agent: str = "",
    request_id: str = "",
    refresh: bool = False,
    auth_method: AuthMethod | None = None,
    reason: str | None = None,
) -> LookupResult:
    """``reason``: why the staff member looks the customer up (LOOKUP_REASON), stored on
    the audit row as given; None when it was not asked."""
    validate_project_id(project_id)
    started = time.monotonic()
    audit = functools.partial(
        _record,
        user=user,
        project_id=project_id,
        channel=channel,
        ip=ip,
        user_agent=user_agent,
        request_id=request_id,
        auth_method=auth_method,
        reason=reason,
        started=started,
    )
    _refuse_without_role(user, audit, [project_id])
    result = _limited_fetch(user, project_id, refresh=refresh)
    event = audit(result)
    return dataclasses.replace(result, event=event)


def look_up_customers(
    *,
    user: Any,
    project_ids: Sequence[int],
    pool: Executor,
    ip: str | None = None,
    user_agent: str = "",
    request_id: str = "",
    auth_method: AuthMethod | None = None,
    reason: str | None = None,
) -> list[LookupResult | Exception]:
    """Several projects at once (a run sheet), each exactly as ``look_up_customer`` would:
    role, rate limit, cache, Solar Proof, one audit row. What each gives, in order: its
    result, or the exception that kept it from one (``AuditUnavailable``, or an error of
    ours, which stays with its own project).

    Rate limit, cache and Solar Proof run side by side in ``pool``, whose threads never
    touch the database; the audit rows are written here, in the calling thread, once every
    job has its answer and before any result is returned. So a sheet holds at most the one
    database connection of its request, however many projects it has, and none while its
    jobs wait (given back to the pool, solarproof_portal/database.py). Every job may wait
    for a Solar Proof slot until the sheet's budget (SOLARPROOF_TIMEOUT) has run out; after
    that a job that finds no free slot answers that Solar Proof is busy.

    Raises ``NotPermitted`` (after auditing each project's refusal) for a user without a role.
    """
    for project_id in project_ids:
        validate_project_id(project_id)
    started = time.monotonic()
    audit = functools.partial(
        _record,
        user=user,
        channel=Channel.WEB,
        ip=ip,
        user_agent=user_agent,
        request_id=request_id,
        auth_method=auth_method,
        reason=reason,
        started=started,
    )
    _refuse_without_role(user, audit, project_ids)
    deadline = started + settings.SOLARPROOF_TIMEOUT

    def job(project_id: int) -> LookupResult:
        return _limited_fetch(user, project_id, refresh=False, slot_wait=max(0.0, deadline - time.monotonic()))

    # Each job runs in a copy of this request's context, so its log lines carry the request ID.
    futures = [pool.submit(contextvars.copy_context().run, job, project_id) for project_id in project_ids]
    database.release_while_waiting()
    concurrent.futures.wait(futures)
    answers: list[LookupResult | Exception] = []
    for project_id, future in zip(project_ids, futures, strict=True):
        try:
            result = future.result()
        except Exception as exc:
            logger.exception("The lookup of project=%s failed", project_id)
            answers.append(exc)
            continue
        try:
            answers.append(dataclasses.replace(result, event=audit(result, project_id=project_id)))
        except AuditUnavailable as exc:
            answers.append(exc)
    return answers


def _refuse_without_role(user: Any, audit: functools.partial[LookupEvent], project_ids: Sequence[int]) -> None:
    """A user without a role that may look up customers: each project's refusal audited,
    then ``NotPermitted``."""
    if not user.has_perm(PERMISSION):
        for project_id in project_ids:
            audit(LookupResult(project_id, Outcome.NOT_AUTHORISED), project_id=project_id)
        raise NotPermitted("Your account has no role that may look up customers.")


def _limited_fetch(user: Any, project_id: int, *, refresh: bool, slot_wait: float | None = None) -> LookupResult:
    """Rate limit, cache, Solar Proof: the lookup before its audit row. No database: this
    thread's connection goes back to the pool before Solar Proof is asked."""
    limit, window = settings.LOOKUP_RATE_LIMIT
    if hit_rate_limit(key=f"lookup:user:{user.pk}", limit=limit, window_seconds=window):
        return LookupResult(
            project_id,
            Outcome.RATE_LIMITED,
            message=f"{Outcome.RATE_LIMITED.label}: you have made more than {limit} lookups in "
            f"{_describe_window(window)}. Wait a moment, then try again.",
        )
    return _fetch(project_id, refresh=refresh, slot_wait=slot_wait)


def _fetch(project_id: int, *, refresh: bool, slot_wait: float | None = None) -> LookupResult:
    cached = None if refresh else _cache_get(project_id)
    if cached is not None:
        customer, fetched_at = cached
        return LookupResult(project_id, Outcome.FOUND, customer, cache_hit=True, fetched_at=fetched_at)
    client = solarproof_client()
    # The wait on Solar Proof holds no database connection (the pool has it back until the
    # audit write takes one again).
    database.release_while_waiting()
    try:
        customer = guard.call_solar_proof(lambda: client.get_customer_of_project(project_id), wait=slot_wait)
    except errors.SolarProofError as exc:
        outcome = exc.outcome
        # Solar Proof not asked (circuit open, bulkhead full): the guard's state change
        # and /metrics tell the operator, once, not a line per lookup.
        if not isinstance(exc, guard.SolarProofDown | guard.SolarProofBusy):
            log = logger.error if outcome == Outcome.API_KEY_INVALID else logger.warning
            log("Solar Proof lookup failed: project=%s outcome=%s detail=%s", project_id, outcome, exc.detail)
        return LookupResult(project_id, outcome, message=f"{outcome.label}. {exc.advice}".strip())
    fetched_at = timezone.now()
    _cache_set(project_id, (customer, fetched_at))
    return LookupResult(project_id, Outcome.FOUND, customer, fetched_at=fetched_at)


def _record(result: LookupResult, *, started: float, **fields: Any) -> LookupEvent:
    duration_ms = round((time.monotonic() - started) * 1000)
    # The append may wait for another thread of this process to write its row (group
    # commit, customers/audit/group_commit.py): a thread waiting there must hold no
    # connection, or with every pooled connection held by waiting threads the writer could
    # get none (PoolTimeout, the whole batch withheld). The writer takes one again. So
    # the role written on the row is read first: a user the session did not bring (with
    # their group names) is asked the database for it here, not while waiting.
    access.role_at_the_time(fields["user"])
    database.release_while_waiting()
    try:
        with metrics.AUDIT_APPEND_SECONDS.time():
            event = audit_log.record_lookup(
                outcome=result.outcome,
                customer_id=result.customer.customer_id if result.customer else None,
                duration_ms=duration_ms,
                cache_hit=result.cache_hit,
                **fields,
            )
    except DatabaseFailure as exc:  # DatabaseError, and InterfaceError (a closed connection)
        metrics.set_dependency_up("database", up=False)
        logger.error(
            "Audit write failed (%s); withholding the lookup of project=%s",
            database.failure_in_words(exc),
            fields["project_id"],
        )
        raise AuditUnavailable("The lookup could not be recorded, so it is not shown.") from None
    metrics.set_dependency_up("database", up=True)
    metrics.LOOKUPS.labels(outcome=result.outcome.value, channel=getattr(fields["channel"], "value", "")).inc()
    logger.info(
        "lookup project=%s outcome=%s channel=%s cache_hit=%s duration_ms=%s",
        fields["project_id"],
        result.outcome,
        fields["channel"],
        result.cache_hit,
        duration_ms,
    )
    return event


def _cache_key(project_id: int) -> str:
    return f"customer:v1:{project_id}"


def _cache_get(project_id: int) -> tuple[solarproof.Customer, datetime] | None:
    if not settings.LOOKUP_CACHE_SECONDS:
        return None
    try:
        return cache.get(_cache_key(project_id))
    except Exception as exc:  # a cache outage must not stop lookups; its breaker logs it once
        logger.debug("Lookup cache unavailable (%s); asking Solar Proof directly", type(exc).__name__)
        return None


def _cache_set(project_id: int, value: tuple[solarproof.Customer, datetime]) -> None:
    if not settings.LOOKUP_CACHE_SECONDS:
        return
    try:
        cache.set(_cache_key(project_id), value, timeout=settings.LOOKUP_CACHE_SECONDS)
    except Exception as exc:
        logger.debug("Lookup cache unavailable (%s); result not cached", type(exc).__name__)


def _describe_window(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"a {unit}" if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"


def solarproof_client() -> solarproof.SolarProofClient:
    """The process's client for the configured upstream: Solar Proof, or in demo mode
    the sandbox started inside this process."""
    if settings.SOLARPROOF_DEMO:
        return _client(sandbox.demo_sandbox().url, sandbox.DEMO_API_KEY, settings.SOLARPROOF_TIMEOUT)
    return _client(settings.SOLARPROOF_API_URL, settings.SOLARPROOF_API_KEY, settings.SOLARPROOF_TIMEOUT)


@functools.lru_cache(maxsize=4)
def _client(base_url: str, api_key: str, timeout: float) -> solarproof.SolarProofClient:
    return solarproof.SolarProofClient(base_url=base_url, api_key=api_key, timeout=timeout)
