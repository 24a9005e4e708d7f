"""Circuit breakers for the portal's neighbours (Solar Proof, the cache): pybreaker's
state machine, with the two things a threaded app server needs from it.

- pybreaker holds its lock for the whole guarded call, so a process could make one call
  at a time through a breaker. Here the lock is held only to decide whether a call may go
  and to record how it went; the call itself runs unlocked.
- Half-open lets exactly one trial call through at a time; every other call is refused
  at once until the trial has answered. A hung neighbour then holds one thread per
  ``reset_timeout``, not every thread.

The state is kept in each process's memory, not in Redis: the cache is one of the
neighbours guarded, and a breaker that asked Redis for its state would hang with it.
Each process learns of an outage from its own ``fail_max`` failures.

An outage is logged on state change only: one warning when the circuit opens, with the
error once; one info line when a trial call closes it, with how long the neighbour was
gone and how many calls it turned away or failed meanwhile. Nothing per call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import pybreaker
from django.conf import settings
from django.utils import timezone

from solarproof_portal import metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")

CircuitOpen = pybreaker.CircuitBreakerError


class Breaker(pybreaker.CircuitBreaker):
    """``name`` is the neighbour in staff's words (it starts the log lines); ``dependency``
    its label in ``portal_dependency_up``; ``fail_max_setting`` and ``reset_setting`` name
    the Django settings read on every decision; ``describe`` turns an error into the few
    safe words the warning carries (never a URL, a key or a customer's details);
    ``hanging`` counts the other calls in flight that have waited too long to be well."""

    def __init__(
        self,
        *,
        name: str,
        dependency: str,
        fail_max_setting: str,
        reset_setting: str,
        is_outage: Callable[[BaseException], bool],
        describe: Callable[[BaseException], str],
        hanging: Callable[[], int] = lambda: 0,
    ) -> None:
        self._fail_max_setting = fail_max_setting
        self._reset_setting = reset_setting
        super().__init__(
            exclude=[lambda exc: not is_outage(exc)],
            name=name,
            throw_new_error_on_trip=False,
        )
        self.dependency = dependency
        self._describe = describe
        self._hanging = hanging
        self._trial_running = False
        self._last_error = ""
        self._opened_monotonic: float | None = None
        self._affected = 0
        self.last_tried: datetime | None = None
        metrics.set_dependency_up(dependency, up=True)

    @property
    def fail_max(self) -> int:
        return getattr(settings, self._fail_max_setting)

    @fail_max.setter
    def fail_max(self, number: int) -> None:
        raise AttributeError(f"set {self._fail_max_setting} instead")

    @property
    def reset_timeout(self) -> float:
        return getattr(settings, self._reset_setting)

    @reset_timeout.setter
    def reset_timeout(self, timeout: float) -> None:
        raise AttributeError(f"set {self._reset_setting} instead")

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        trial = self._admit()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self._record_failure(exc, trial=trial)
            raise
        else:
            self._record_success(trial=trial)
            return result

    @property
    def is_open(self) -> bool:
        """True while calls are being refused (open, or half-open with its trial out)."""
        with self._lock:
            return self.current_state != pybreaker.STATE_CLOSED

    def _admit(self) -> bool:
        """May a call go now? Raises ``CircuitOpen`` if not; True when it is the trial."""
        with self._lock:
            state = self.current_state
            if state == pybreaker.STATE_OPEN:
                opened_at = self._state_storage.opened_at
                if opened_at and (timezone.now() - opened_at).total_seconds() < self.reset_timeout:
                    self._affected += 1
                    raise CircuitOpen(f"{self.name} circuit open")
                self.half_open()
                state = pybreaker.STATE_HALF_OPEN
            if state == pybreaker.STATE_HALF_OPEN:
                if self._trial_running:
                    self._affected += 1
                    raise CircuitOpen(f"{self.name} circuit half-open, trial call running")
                self._trial_running = True
            self.last_tried = timezone.now()
            return state == pybreaker.STATE_HALF_OPEN

    def _record_failure(self, exc: BaseException, *, trial: bool) -> None:
        with self._lock:
            if trial:
                self._trial_running = False
            if not self.is_system_error(exc):  # an answer, just not a customer: the neighbour is up
                self._close_if_trial(trial)
                return
            self._last_error = self._describe(exc)
            if self._opened_monotonic is not None:
                self._affected += 1
            was_closed = self.current_state == pybreaker.STATE_CLOSED
            self._state_storage.increment_counter()
            # Calls still waiting on a neighbour that has just failed one count against it
            # too: otherwise each slot they free would start another call that hangs.
            failures = self._state_storage.counter + (self._hanging() if was_closed else 0)
            if trial or (was_closed and failures >= self.fail_max):
                self._open(failures=failures, from_closed=was_closed)
            else:
                logger.debug("%s call failed: %s", self.name, self._last_error)

    def _record_success(self, *, trial: bool) -> None:
        with self._lock:
            if trial:
                self._trial_running = False
            self._close_if_trial(trial)
            if self.current_state == pybreaker.STATE_CLOSED:
                self._state_storage.reset_counter()

    def _close_if_trial(self, trial: bool) -> None:
        if not trial:
            return
        self.close()
        if self._opened_monotonic is not None:
            gone = time.monotonic() - self._opened_monotonic
            logger.info(
                "%s is back after %.0f s; %d calls were turned away or failed while it was gone",
                self.name,
                gone,
                self._affected,
            )
        self._opened_monotonic = None
        self._affected = 0
        metrics.set_dependency_up(self.dependency, up=True)

    def _open(self, *, failures: int, from_closed: bool) -> None:
        self.open()
        if from_closed and self._opened_monotonic is None:
            self._opened_monotonic = time.monotonic()
            self._affected = failures
            logger.warning(
                "%s is unavailable: %d calls in a row got no answer (last: %s); calls are turned away "
                "at once, with one trial call every %.0f s until it answers",
                self.name,
                failures,
                self._last_error,
                self.reset_timeout,
            )
        metrics.set_dependency_up(self.dependency, up=False)


_registry: dict[str, Breaker] = {}
_registry_lock = threading.Lock()


def breaker(dependency: str, factory: Callable[[], Breaker]) -> Breaker:
    """The process's one breaker for ``dependency``, made by ``factory`` the first time."""
    with _registry_lock:
        found = _registry.get(dependency)
        if found is None:
            found = _registry[dependency] = factory()
        return found


def reset_all() -> None:
    """Forget every breaker of this process: the next call makes a closed one from the
    settings of the moment (between tests)."""
    with _registry_lock:
        breakers = list(_registry.values())
        _registry.clear()
    for each in breakers:
        metrics.set_dependency_up(each.dependency, up=True)
