"""What the operator sees at /metrics (Prometheus text format): the names in DESIGN.md.

Under gunicorn every worker is its own process, so prometheus-client runs in its
multiprocess mode: each process writes its counts to files in PROMETHEUS_MULTIPROC_DIR
(set up by gunicorn.conf.py before the workers start) and a scrape adds them up. Without
that variable (``runserver``, the tests) the process's own registry is served.

``portal_dependency_up`` is 0 while any live worker's circuit for that neighbour is
open (or its last check failed), 1 when all of them are closed.
"""

from __future__ import annotations

import hmac
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LOOKUPS = Counter(
    "portal_lookups_total",
    "Customer lookups, by audit outcome and channel.",
    ["outcome", "channel"],
)
UPSTREAM_SECONDS = Histogram(
    "portal_upstream_request_seconds",
    "Calls to Solar Proof, from the request to the whole answer (or the budget running out).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
)
DEPENDENCY_UP = Gauge(
    "portal_dependency_up",
    "1 while the neighbour answers (circuit closed), 0 while it does not (circuit open).",
    ["dependency"],
    multiprocess_mode="livemin",
)
AUDIT_APPEND_SECONDS = Histogram(
    "portal_audit_append_seconds",
    "Appending one row to the audit log, waiting for the chain's lock included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
UPSTREAM_TURNED_AWAY = Counter(
    "portal_upstream_turned_away_total",
    "Lookups answered without calling Solar Proof: its circuit was open, or this process "
    "already had as many calls waiting on it as the bulkhead allows.",
    ["reason"],
)

for _dependency in ("solarproof", "cache", "database"):
    DEPENDENCY_UP.labels(dependency=_dependency).set(1)


def set_dependency_up(dependency: str, *, up: bool) -> None:
    DEPENDENCY_UP.labels(dependency=dependency).set(1 if up else 0)


def token_matches(offered: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(offered.encode(), expected.encode())


def exposition() -> tuple[bytes, str]:
    """The scrape's body and content type: every worker's counts together."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
