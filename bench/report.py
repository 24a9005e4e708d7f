"""The report, built from parts: a heading that says what kind of run this was, the
machine, the summary table (rows from each case), then each case's own section."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.cases import CASES, throughput
from bench.common import Plan, Row, connection_bound, describe, load_average, median


def machine() -> dict[str, str]:
    from django import get_version
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    import gunicorn

    return {
        "cores": str(os.cpu_count()),
        "memory": f"{memory:.0f} GiB",
        "cpu": cpu,
        "python": platform.python_version(),
        "django": get_version(),
        "gunicorn": gunicorn.__version__,
        "postgresql": postgres,
        "redis": redis.removeprefix("v="),
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()[1],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_at_start": load_average(),
    }


def heading(results: dict, plan: Plan) -> list[str]:
    m = results["machine"]
    if plan.smoke:
        title = "# Benchmark smoke run (not a measurement)"
        intro = (
            f"Made {m['date']} by `make bench-smoke`: one run of seconds per case, to show the benchmark "
            "scripts still work. These figures have no targets and say nothing about speed; the measured "
            "figures are in `bench/RESULTS.md`, made by `make bench`."
        )
    else:
        title = "# Benchmark results"
        intro = (
            f"Measured {m['date']} by `make bench` (`bench/run.py`): {plan.runs} runs of each case, median with the "
            "range (min–max) in brackets; every figure is set against its anchor from the same run."
        )
    return [
        title,
        "",
        intro,
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory']}; Python {m['python']}, Django {m['django']}, "
        f"gunicorn {m['gunicorn']} (`solarproof_portal/gunicorn.conf.py`), PostgreSQL {m['postgresql']}, "
        f"Redis {m['redis']}, load from wrk {m['wrk']} on the same machine. The sandbox is a real HTTP server "
        f"(`manage.py run_sandbox`). Load average (1 / 5 / 15 min) at the start {m['load_at_start']}, "
        f"at the end {results.get('load_at_end', '?')}.",
        "",
        *_configuration(results),
    ]


def _configuration(results: dict) -> list[str]:
    """The server configuration every figure was measured at, unless its case says otherwise."""
    config = results.get("server_config")
    if not config:
        return []
    return [
        f"Portal configuration (the production defaults, unless a case says otherwise): {describe(config)}; "
        f"at most {connection_bound(config)} database connections per app server. The plain version runs under "
        "the same gunicorn config, each thread keeping its own connection (CONN_MAX_AGE 60), as an afternoon's version would.",
        "",
    ]


def summary_table(results: dict, plan: Plan) -> list[str]:
    rows: list[Row] = [row for case in CASES for row in case.summary(results)]
    if plan.smoke:
        lines = ["## Summary (smoke figures)", "", "| # | what | smoke figure |", "|---|---|---|"]
        return [*lines, *(f"| {row.number} | {row.what} | {row.measured} |" for row in rows), ""]
    lines = ["## Summary", "", "| # | what | measured | target | |", "|---|---|---|---|---|"]
    for row in rows:
        verdict = "" if row.ok is None else ("met" if row.ok else "**missed**")
        lines.append(f"| {row.number} | {row.what} | {row.measured} | {row.target} | {verdict} |")
    return [*lines, ""]


# Kept in a file of its own, which this report does not rewrite.
FAULTS_LINK = (
    "When a neighbour hangs (Solar Proof or Redis), before and after issue 22: lookups/s, the "
    "client's p95 and the /healthz probe's p99 are in [FAULTS.md](FAULTS.md) (`bench/faults.py`)."
)


def build(results: dict, plan: Plan) -> str:
    lines = [*heading(results, plan), *summary_table(results, plan), FAULTS_LINK, "", "## Details", ""]
    for case in CASES:
        lines += case.details(results, plan)
    return "\n".join(lines)


def ratio_line(results: dict) -> str:
    """The one figure CI prints: portal ÷ plain lookups per second (no threshold in CI)."""
    ratios = throughput.ratios(results, "portal")
    return f"bench: portal ÷ plain lookups/s at {throughput.CONNECTIONS} connections = {median(ratios):.2f}"
