"""How the portal treats Solar Proof when it misbehaves: decided here, once.

- **Circuit breaker.** After ``SOLARPROOF_CIRCUIT_FAILURES`` calls in a row that got no
  answer (timeouts, refused connections, 502-504: ``UpstreamUnavailable``), the circuit
  opens and lookups answer at once with the outage page, saying when Solar Proof was last
  tried. Every ``SOLARPROOF_CIRCUIT_RESET_SECONDS`` one lookup is let through as a trial;
  its answer closes the circuit. Any answer from Solar Proof, an error code included,
  counts as Solar Proof being up.
- **Bulkhead.** At most ``SOLARPROOF_MAX_CONCURRENT`` calls to Solar Proof at once in a
  process, single lookups and run sheets together (by default two fewer than gunicorn's
  threads), so a Solar Proof that hangs cannot hold every thread: sign-in, history and
  the admin keep answering. A lookup that finds every slot taken waits a moment for one
  (not at all when every slot has been held for half a second: Solar Proof is stuck, and
  waiting would only hold this thread too), then answers that Solar Proof is busy.

Both answers are ``UpstreamUnavailable``, so the lookup is audited as
``upstream_unavailable``: its real outcome, since Solar Proof was not asked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils import timezone

from customers.upstream.errors import SolarProofError, UpstreamUnavailable
from customers.upstream.solarproof import Customer
from solarproof_portal import circuits, metrics

# A single lookup waits at most this long (and at most a quarter of its budget) for a
# free slot: long enough to ride out a burst, short enough not to hold the thread.
SLOT_WAIT_SECONDS = 0.1
# A slot held this long is not about to be freed: nobody waits for one then.
STUCK_SECONDS = 0.5


class SolarProofDown(UpstreamUnavailable):
    """The circuit is open: Solar Proof was not asked."""

    def __init__(self, *, last_tried: str, retry_seconds: float) -> None:
        self.advice = (
            f"It has stopped answering: the portal last tried it at {last_tried} and "
            f"tries again every {retry_seconds:.0f} seconds. Try again in a minute."
        )
        super().__init__("circuit open")


class SolarProofBusy(UpstreamUnavailable):
    advice = "It is slow to answer, and this server is already waiting on it for other lookups. Try again in a minute."


def _describe(exc: BaseException) -> str:
    # Our own words (SolarProofError.detail), never the URL: it carries the API key.
    return exc.detail if isinstance(exc, SolarProofError) else type(exc).__name__


def _new_breaker() -> circuits.Breaker:
    return circuits.Breaker(
        name="Solar Proof",
        dependency="solarproof",
        fail_max_setting="SOLARPROOF_CIRCUIT_FAILURES",
        reset_setting="SOLARPROOF_CIRCUIT_RESET_SECONDS",
        is_outage=lambda exc: isinstance(exc, UpstreamUnavailable),
        describe=_describe,
        # The failing call still holds its slot while its failure is recorded.
        hanging=lambda: max(0, bulkhead.stuck() - 1),
    )


def breaker() -> circuits.Breaker:
    return circuits.breaker("solarproof", _new_breaker)


class _Bulkhead:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._started: list[float] = []  # when each call in flight took its slot

    @property
    def in_use(self) -> int:
        return len(self._started)

    def stuck(self) -> int:
        """Calls in flight for longer than STUCK_SECONDS."""
        now = time.monotonic()
        with self._condition:
            return sum(now - started > STUCK_SECONDS for started in self._started)

    @contextmanager
    def slot(self, *, wait: float) -> Iterator[None]:
        limit = settings.SOLARPROOF_MAX_CONCURRENT
        deadline = time.monotonic() + wait
        with self._condition:
            while len(self._started) >= limit:
                remaining = deadline - time.monotonic()
                # Every slot held for a while means Solar Proof is slow or hung: no slot is
                # coming soon, and waiting would only hold this thread too.
                stuck = time.monotonic() - max(self._started) > STUCK_SECONDS
                if remaining <= 0 or stuck:
                    metrics.UPSTREAM_TURNED_AWAY.labels(reason="bulkhead_full").inc()
                    raise SolarProofBusy(f"{len(self._started)} calls in flight")
                self._condition.wait(remaining)
            mine = time.monotonic()
            self._started.append(mine)
        try:
            yield
        finally:
            with self._condition:
                self._started.remove(mine)
                self._condition.notify()


bulkhead = _Bulkhead()


def call_solar_proof(fetch: Callable[[], Customer], *, wait: float | None = None) -> Customer:
    """``fetch()`` behind the bulkhead and the circuit breaker. ``wait``: how long to wait
    for a slot (by default a moment; a run sheet's jobs wait out what is left of its budget)."""
    if wait is None:
        wait = min(SLOT_WAIT_SECONDS, settings.SOLARPROOF_TIMEOUT / 4)
    guard = breaker()
    with bulkhead.slot(wait=wait):
        try:
            return guard.call(_timed, fetch)
        except circuits.CircuitOpen:
            metrics.UPSTREAM_TURNED_AWAY.labels(reason="circuit_open").inc()
            last = guard.last_tried
            raise SolarProofDown(
                last_tried=timezone.localtime(last).strftime("%H:%M:%S") if last else "an unknown time",
                retry_seconds=guard.reset_timeout,
            ) from None


def _timed(fetch: Callable[[], Customer]) -> Customer:
    with metrics.UPSTREAM_SECONDS.time():
        return fetch()
