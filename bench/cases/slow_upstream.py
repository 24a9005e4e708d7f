"""3. Waiting on a slow upstream: Solar Proof at 100 ms, 64 connections, at the default
configuration and at other thread counts (and sync workers, for scale), each with the
peak database connections its app server opened. Ideal = min(the portal's lookup rate
with an instant upstream, 64 / 0.1 s)."""

from __future__ import annotations

from bench.cases import throughput
from bench.common import (
    Bench,
    ConnectionPeak,
    Plan,
    Row,
    connection_bound,
    describe,
    median,
    portal,
    project_url,
    sandbox,
    server_config,
    share,
    spread,
    wrk,
)

NAME = "slow_upstream"
CONNECTIONS = 64
UPSTREAM_MS = 100
DEFAULT = "default"
# Each setup's environment on top of the production config; "default" changes nothing.
SETUPS: dict[str, dict[str, str]] = {
    "sync": {"WORKER_CLASS": "sync"},
    "8 threads": {"GUNICORN_THREADS": "8"},
    "16 threads": {"GUNICORN_THREADS": "16"},
    DEFAULT: {},
    "32 threads": {"GUNICORN_THREADS": "32"},
    "64 threads": {"GUNICORN_THREADS": "64"},
}


def run(bench: Bench) -> dict:
    results = {}
    configs = {name: server_config(**extra) for name, extra in SETUPS.items()}
    with sandbox(UPSTREAM_MS) as upstream:
        for name, extra in SETUPS.items():
            # The default is measured once, under its own name, even where it equals a
            # thread count listed beside it.
            if name != DEFAULT and _same(configs[name], configs[DEFAULT]):
                continue
            with portal(upstream, bench.static_root, **extra) as base:
                url = project_url(base)
                wrk(url, connections=CONNECTIONS, seconds=bench.plan.warmup, headers=bench.headers)
                with ConnectionPeak() as connections:
                    runs = [
                        wrk(url, connections=CONNECTIONS, seconds=bench.plan.seconds, headers=bench.headers)
                        for _ in range(bench.plan.runs)
                    ]
            results[name] = {"config": configs[name], "runs": runs, "peak_connections": connections.peak}
    return results


def _same(a: dict, b: dict) -> bool:
    return (a["worker_class"], a["workers"], a["threads"], a["pool"]) == (
        b["worker_class"], b["workers"], b["threads"], b["pool"],
    )  # fmt: skip


def ideal(results: dict) -> float:
    return min(median(results[throughput.NAME]["portal_rps"]), CONNECTIONS / (UPSTREAM_MS / 1000))


def _failed(runs: list[dict]) -> int:
    return int(sum(run["non_2xx"] + run["socket_errors"] for run in runs))


def _rate(setup: dict) -> float:
    return median([run["rps"] for run in setup["runs"]])


def _best(results: dict) -> str:
    """The measured setup with the highest median rate and no failed request."""
    setups = {name: setup for name, setup in results[NAME].items() if not _failed(setup["runs"])}
    return max(setups or results[NAME], key=lambda name: _rate(results[NAME][name]))


def summary(results: dict) -> list[Row]:
    best = ideal(results)
    default = results[NAME][DEFAULT]
    rate, failed = _rate(default), _failed(default["runs"])
    bound = connection_bound(default["config"])
    within = bound is None or default["peak_connections"] <= bound
    top_name = _best(results)
    top = results[NAME][top_name]
    return [
        Row(3, f"{UPSTREAM_MS} ms upstream, {CONNECTIONS} connections, default config "
               f"({describe(default['config'])}), share of ideal",
            f"{rate:.0f} req/s = {100 * share(rate, best):.0f} % of ideal {best:.0f}; {failed} failed",
            "≥ 95 %, none failing", rate >= 0.95 * best and failed == 0),
        Row(3, "the same, peak database connections per app server (pg_stat_activity)",
            f"{default['peak_connections']}", f"≤ workers × pool max = {bound}" if bound else "", within),
        Row(3, f"the same, best measured config ({describe(top['config'])})",
            f"{_rate(top):.0f} req/s = {100 * share(_rate(top), best):.0f} % of ideal; "
            f"{top['peak_connections']} connections at peak"),
    ]  # fmt: skip


def details(results: dict, plan: Plan) -> list[str]:
    best = ideal(results)
    lines = [
        "### 3. Waiting on a slow upstream: threads, workers and database connections",
        "",
        f"Sandbox at {UPSTREAM_MS} ms, wrk with {CONNECTIONS} connections and a 10 s timeout, {plan.seconds} s per run. "
        "Failed = non-2xx answers plus socket errors. Ideal = min(the portal's lookup rate from 2, "
        f"{CONNECTIONS} / {UPSTREAM_MS / 1000:g} s) = {best:.0f} req/s. Peak connections: the most client "
        "connections to the database the app server held at once during its runs (pg_stat_activity every 20 ms); "
        "bound: workers × the pool's maximum (workers × threads without a pool).",
        "",
        "| configuration | req/s | % of ideal | failed | peak DB connections | bound |",
        "|---|---|---|---|---|---|",
    ]
    for name, setup in results[NAME].items():
        rates = [run["rps"] for run in setup["runs"]]
        label = describe(setup["config"]) + (" **(default)**" if name == DEFAULT else "")
        bound = connection_bound(setup["config"])
        lines.append(
            f"| {label} | {spread(rates)} | {100 * share(median(rates), best):.0f} % | {_failed(setup['runs'])} | "
            f"{setup['peak_connections']} | {bound if bound is not None else '–'} |"
        )
    return [*lines, ""]
