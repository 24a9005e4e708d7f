"""3. Waiting on a slow upstream: Solar Proof at 100 ms, 64 connections, for each gunicorn
worker class. Ideal = min(the portal's lookup rate with an instant upstream, 64 / 0.1 s)."""

from __future__ import annotations

from bench.cases import throughput
from bench.common import Bench, Plan, Row, median, portal, project_url, sandbox, share, spread, wrk

NAME = "slow_upstream"
CONNECTIONS = 64
UPSTREAM_MS = 100
DEFAULT = "gthread, 2×CPU workers × 8 threads (default)"
WORKER_SETUPS = {
    "sync, 2×CPU workers": {"WORKER_CLASS": "sync"},
    DEFAULT: {},
    "gthread, 2×CPU workers × 16 threads": {"GUNICORN_THREADS": "16"},
}


def run(bench: Bench) -> dict:
    results = {}
    with sandbox(UPSTREAM_MS) as upstream:
        for name, extra in WORKER_SETUPS.items():
            with portal(upstream, bench.static_root, **extra) as base:
                url = project_url(base)
                wrk(url, connections=CONNECTIONS, seconds=bench.plan.warmup, headers=bench.headers)
                results[name] = [
                    wrk(url, connections=CONNECTIONS, seconds=bench.plan.seconds, headers=bench.headers)
                    for _ in range(bench.plan.runs)
                ]
    return results


def ideal(results: dict) -> float:
    return min(median(results[throughput.NAME]["portal_rps"]), CONNECTIONS / (UPSTREAM_MS / 1000))


def _failed(runs: list[dict]) -> int:
    return int(sum(run["non_2xx"] + run["socket_errors"] for run in runs))


def summary(results: dict) -> list[Row]:
    runs = results[NAME][DEFAULT]
    rate, best = median([run["rps"] for run in runs]), ideal(results)
    return [
        Row(3, f"{UPSTREAM_MS} ms upstream, {CONNECTIONS} connections (gthread default), share of ideal",
            f"{rate:.0f} req/s = {100 * share(rate, best):.0f} % of ideal {best:.0f}; {_failed(runs)} failed",
            "≥ 90 %, none failing", rate >= 0.9 * best and _failed(runs) == 0),
    ]  # fmt: skip


def details(results: dict, plan: Plan) -> list[str]:
    best = ideal(results)
    lines = [
        "### 3. Waiting on a slow upstream: the worker class",
        "",
        f"Sandbox at {UPSTREAM_MS} ms, wrk with {CONNECTIONS} connections and a 10 s timeout, {plan.seconds} s per run. "
        "Failed = non-2xx answers plus socket errors. Ideal = min(the portal's lookup rate from 2, "
        f"{CONNECTIONS} / {UPSTREAM_MS / 1000:g} s) = {best:.0f} req/s.",
        "",
        "| gunicorn | req/s | % of ideal | failed requests |",
        "|---|---|---|---|",
    ]
    for name, runs in results[NAME].items():
        rates = [run["rps"] for run in runs]
        lines.append(f"| {name} | {spread(rates)} | {100 * share(median(rates), best):.0f} % | {_failed(runs)} |")
    return [*lines, ""]
