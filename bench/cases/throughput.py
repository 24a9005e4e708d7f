"""2. Lookups per second at 32 connections (wrk, upstream answering at once): the portal
against the plain version in the same run, both with the lookup cache off and with the
portal's cache warm; the portal with its audit write replaced by a no-op prices that
write; a bare Django view through the portal's whole stack is the floor line."""

from __future__ import annotations

from bench.common import Bench, ConnectionPeak, Plan, Row, median, sandbox, series_url, share, spread, wrk

NAME = "throughput"
CONNECTIONS = 32
SERIES = ("plain", "portal", "cached", "no_audit", "bare")


def run(bench: Bench) -> dict:
    rates: dict[str, list[float]] = {name: [] for name in SERIES}
    peaks: dict[str, int] = dict.fromkeys(SERIES, 0)
    with sandbox(0) as upstream:
        for _ in range(bench.plan.runs):  # interleaved: each run sets every series against the same load
            for name in SERIES:
                with series_url(name, upstream, bench.static_root) as url:
                    headers = {} if name == "bare" else bench.headers  # the bare view needs no session
                    wrk(url, connections=CONNECTIONS, seconds=bench.plan.warmup, headers=headers)
                    with ConnectionPeak() as connections:
                        measured = wrk(url, connections=CONNECTIONS, seconds=bench.plan.seconds, headers=headers)
                    rates[name].append(measured["rps"])
                    peaks[name] = max(peaks[name], connections.peak)
    return {f"{name}_rps": values for name, values in rates.items()} | {"peak_connections": peaks}


def ratios(results: dict, name: str) -> list[float]:
    """Per run, the series' rate over the plain version's from the same run."""
    r = results[NAME]
    return [share(a, b) for a, b in zip(r[f"{name}_rps"], r["plain_rps"], strict=True)]


def summary(results: dict) -> list[Row]:
    r = results[NAME]
    portal_ratio, cached_ratio = ratios(results, "portal"), ratios(results, "cached")
    return [
        Row(2, f"lookups/s at {CONNECTIONS} connections, portal ÷ plain",
            f"{median(r['portal_rps']):.0f} ÷ {median(r['plain_rps']):.0f} = {_ratio(portal_ratio)}",
            "≥ 1.0", median(portal_ratio) >= 1.0),
        Row(2, "the same, portal's lookup cache warm",
            f"{median(r['cached_rps']):.0f} ÷ {median(r['plain_rps']):.0f} = {_ratio(cached_ratio)}",
            "≥ 1.0", median(cached_ratio) >= 1.0),
        Row(2, "floor: bare Django view through the portal's stack", f"{median(r['bare_rps']):.0f} req/s"),
    ]  # fmt: skip


def _ratio(values: list[float]) -> str:
    return f"{median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def _peak(r: dict, name: str) -> str:
    """Most database connections the series' server held at once (older results: –)."""
    return str(r.get("peak_connections", {}).get(name, "–"))


def details(results: dict, plan: Plan) -> list[str]:
    r = results[NAME]
    lines = [
        "### 2. Lookups per second, portal beside the plain version",
        "",
        f"wrk, {CONNECTIONS} connections, {plan.seconds} s per run, upstream 0 ms, PostgreSQL with each one's audit "
        "write; the series interleaved in each run. Ratios are per run, then the median. Peak DB connections: "
        "the most client connections to the database the series' app server held at once (pg_stat_activity).",
        "",
        "| series | req/s | ÷ plain | peak DB connections |",
        "|---|---|---|---|",
        f"| plain version (`bench/plain`: startproject middleware, DB sessions, one group query, one INSERT) | "
        f"{spread(r['plain_rps'])} | 1 | {_peak(r, 'plain')} |",
        f"| portal, lookup cache off | {spread(r['portal_rps'])} | {_ratio(ratios(results, 'portal'))} | "
        f"{_peak(r, 'portal')} |",
        f"| portal, lookup cache warm | {spread(r['cached_rps'])} | {_ratio(ratios(results, 'cached'))} | "
        f"{_peak(r, 'cached')} |",
        f"| portal, audit write replaced by a no-op (bench only) | {spread(r['no_audit_rps'])} | "
        f"{_ratio(ratios(results, 'no_audit'))} | {_peak(r, 'no_audit')} |",
        f"| floor: bare Django view (`/bench/bare/`, same settings, middleware and gunicorn config) | "
        f"{spread(r['bare_rps'])} | {_ratio(ratios(results, 'bare'))} | {_peak(r, 'bare')} |",
    ]
    return [*lines, ""]
