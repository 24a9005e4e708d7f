"""1. Added latency: what the portal, and the plain version, add to a direct pooled call
to the upstream (instant answers), one request at a time; and the portal with a warm
lookup cache, which does not call the upstream at all."""

from __future__ import annotations

import requests

from bench.common import (
    Bench,
    Plan,
    Row,
    direct_url,
    median,
    percentile,
    sandbox,
    series_url,
    spread,
    timed_gets,
)

NAME = "latency"
SERIES = ("direct", "portal", "plain", "cached")


def run(bench: Bench) -> dict:
    times: dict[str, list[list[float]]] = {name: [] for name in SERIES}
    with sandbox(0) as upstream:
        for _ in range(bench.plan.runs):  # interleaved, so drift in the machine's load hits all alike
            times["direct"].append(timed_gets(requests.Session(), direct_url(upstream), bench.plan.samples))
            for name in SERIES[1:]:
                with series_url(name, upstream, bench.static_root) as url:
                    times[name].append(timed_gets(requests.Session(), url, bench.plan.samples, bench.headers))
    return {
        f"{name}_{stat}_ms": [summarise(run_times) for run_times in times[name]]
        for name in SERIES
        for stat, summarise in (("median", median), ("p95", lambda t: percentile(t, 0.95)))
    } | {"added": _added(times)}


def _added(times: dict[str, list[list[float]]]) -> dict[str, list[float]]:
    """Per run, each series' median and p95 less the direct call's from the same run."""
    added: dict[str, list[float]] = {}
    for name in ("portal", "plain", "cached"):
        pairs = list(zip(times[name], times["direct"], strict=True))
        added[f"{name}_median_ms"] = [median(t) - median(d) for t, d in pairs]
        added[f"{name}_p95_ms"] = [percentile(t, 0.95) - percentile(d, 0.95) for t, d in pairs]
    return added


def summary(results: dict) -> list[Row]:
    added = results[NAME]["added"]
    portal_ms, plain_ms = median(added["portal_median_ms"]), median(added["plain_median_ms"])
    cached_ms = median(added["cached_median_ms"])
    return [
        Row(1, "added latency, portal (upstream 0 ms, uncached)",
            f"median {spread(added['portal_median_ms'])} ms, p95 {spread(added['portal_p95_ms'])} ms",
            f"≤ plain + 1 ms = {plain_ms + 1:.1f} ms", portal_ms <= plain_ms + 1),
        Row(1, "added latency, plain version", f"median {spread(added['plain_median_ms'])} ms, "
            f"p95 {spread(added['plain_p95_ms'])} ms"),
        Row(1, "added latency, portal with the lookup cache warm", f"median {spread(added['cached_median_ms'])} ms",
            "≤ 3 ms", cached_ms <= 3),
    ]  # fmt: skip


def details(results: dict, plan: Plan) -> list[str]:
    r = results[NAME]
    lines = [
        "### 1. Added latency",
        "",
        "Sequential signed-in requests through gunicorn (production config) against a direct call to the sandbox "
        f"with a pooled `requests.Session` (upstream 0 ms); {plan.samples} requests per run after a warm-up, the "
        "four series interleaved in each run. Added = the series less the direct call, same run.",
        "",
        "| series | total median (ms) | added median (ms) | added p95 (ms) |",
        "|---|---|---|---|",
        f"| direct pooled call | {spread(r['direct_median_ms'])} | – | – |",
    ]
    labels = {"portal": "portal (cache off)", "plain": "plain version (bench/plain)", "cached": "portal, cache warm"}
    for name, label in labels.items():
        lines.append(
            f"| {label} | {spread(r[f'{name}_median_ms'])} | {spread(r['added'][f'{name}_median_ms'])} | "
            f"{spread(r['added'][f'{name}_p95_ms'])} |"
        )
    return [*lines, ""]
