"""6. History at scale: a million events written as an honest hash chain, the history
pages an admin opens, the CSV export and the verifier over all of it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.common import ROOT, Bench, Plan, Row, median, spread

NAME = "history"


def run(bench: Bench) -> dict:
    plan = bench.plan
    filled = time.perf_counter()
    fill(plan)
    fill_seconds = time.perf_counter() - filled
    cold_ms, pages = _page_timings(plan)
    report = _report_timings(plan)
    from customers.audit import verify

    verify_started = time.perf_counter()
    verification = verify.verify_chain()
    verify_seconds = time.perf_counter() - verify_started
    export = subprocess.run(
        [sys.executable, str(ROOT / "bench/export_probe.py")],
        cwd=ROOT, env={**os.environ}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {
        "rows": plan.history_rows,
        "fill_seconds": fill_seconds,
        "first_page_cold_ms": cold_ms,
        "pages_ms": pages,
        "access_report": report,
        "export": json.loads(export.stdout.strip().splitlines()[-1]),
        "verify_seconds": verify_seconds,
        "verify": str(verification),
    }


def fill(plan: Plan) -> None:
    """plan.history_rows events over a year, as an honest hash chain from sequence 1, written
    with COPY. The earlier cases' rows (written minutes ago) are cleared first: a year of
    history cannot follow them, since the verifier holds time to sequence order."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from customers.audit import heads

    users = [get_user_model().objects.get_or_create(username=f"staff{n:03d}")[0] for n in range(plan.history_users)]
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / plan.history_rows
    columns = [*heads.CHAIN_FIELDS, "hash"]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE customers_lookupevent DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM customers_lookupevent")
        cursor.execute("ALTER TABLE customers_lookupevent ENABLE TRIGGER USER")
    head_sequence, prev = 0, heads.GENESIS
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(f"COPY customers_lookupevent ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for index in range(plan.history_rows):
            user = users[(index * 7919) % len(users)]
            values = {
                "sequence": head_sequence + 1 + index,
                "created_at": start + step * index,
                "user_id": user.pk,
                "username": user.username,
                "project_id": 1000 + (index * 104729) % plan.history_projects,
                "outcome": "found" if index % 10 else "project_not_found",
                "customer_id": 70000 + index % plan.history_projects,
                "channel": "web",
                "ip": "10.20.30.40",
                "user_agent": "bench",
                "request_id": hashlib.md5(str(index).encode(), usedforsecurity=False).hexdigest(),
                "duration_ms": 40 + index % 60,
                "cache_hit": index % 3 == 0,
                "prev_hash": prev,
            }
            prev = values["hash"] = heads.event_hash(values)
            copy.write_row([values[name] for name in columns])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_lookupevent")


def _page_timings(plan: Plan) -> tuple[float, dict[str, list[float]]]:
    """Server time per page, in-process, as an admin (the review record each view writes included)."""
    from django.conf import settings
    from django.core.cache import cache
    from django.test import Client

    from bench.database import session_cookie

    admin = Client()
    admin.cookies[settings.SESSION_COOKIE_NAME] = session_cookie("bench.admin", "Admins")
    busy_project = 1000 + (5 * 104729) % plan.history_projects
    month_ago = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    pages = {
        "first history page": "/history/",
        "per-project page": f"/history/?project={busy_project}",
        "per-user 30-day page": f"/history/?user=staff007&from={month_ago}",
    }
    cache.clear()
    cold_ms = _time_get(admin, "/history/")
    timings = {}
    for name, url in pages.items():
        admin.get(url)
        timings[name] = [_time_get(admin, url) for _ in range(max(7, plan.runs))]
    return cold_ms, timings


def _report_timings(plan: Plan) -> dict:
    """The customer access report over the whole log: the page and the signed report.json
    (with its fresh checkpoint and a signature per row), in-process as an admin, the
    review record included. The customer of the busy project above: as many lookups as any."""
    from django.conf import settings
    from django.test import Client

    from bench.database import session_cookie

    admin = Client()
    admin.cookies[settings.SESSION_COOKIE_NAME] = session_cookie("bench.admin", "Admins")
    customer = 70000 + 5 % plan.history_projects  # the customer fill() gave the busy project
    urls = {"page": f"/history/customers/{customer}/", "report.json": f"/history/customers/{customer}/report.json"}
    rows = len(json.loads(admin.get(urls["report.json"]).content)["rows"])
    timings = {}
    for name, url in urls.items():
        admin.get(url)
        timings[name] = [_time_get(admin, url) for _ in range(max(7, plan.runs))]
    return {"customer": customer, "rows": rows, "ms": timings}


def _time_get(client, url: str) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, f"{url} answered {response.status_code}"
    return elapsed


def summary(results: dict) -> list[Row]:
    h = results[NAME]
    export = h["export"]
    rows = [
        Row(6, f"history, {name} ({h['rows']:,} events)", f"{spread(runs)} ms", "< 50 ms", median(runs) < 50)
        for name, runs in h["pages_ms"].items()
    ]
    report = h.get("access_report")
    if report:
        rows += [
            Row(6, f"customer access report, {name} ({report['rows']} rows of {h['rows']:,} events)",
                f"{spread(runs)} ms", "< 200 ms", median(runs) < 200)
            for name, runs in report["ms"].items()
        ]  # fmt: skip
    return [
        *rows,
        Row(6, "CSV export of every event", f"{export['rows_per_s']:,.0f} rows/s", "> 100,000 rows/s",
            export["rows_per_s"] > 100_000),
        Row(6, "CSV export, peak memory (whole process)", f"{export['peak_rss_mb']:.0f} MB", "< 150 MB",
            export["peak_rss_mb"] < 150),
    ]  # fmt: skip


def details(results: dict, plan: Plan) -> list[str]:
    h = results[NAME]
    export = h["export"]
    lines = [
        "### 6. History at scale",
        "",
        f"{h['rows']:,} events over {plan.history_users} users and {plan.history_projects:,} projects "
        f"(filled with COPY in {h['fill_seconds']:.0f} s). Server time per page, in-process Django test client "
        "as an admin (the review record written each time included); the first page's 30-day summary is cached "
        f"for a minute: cold, it took {h['first_page_cold_ms']:.0f} ms.",
        "",
        "| page | median (range), ms |",
        "|---|---|",
        *(f"| {name} | {spread(runs)} |" for name, runs in h["pages_ms"].items()),
        *(
            f"| customer access report, {name} (customer {h['access_report']['customer']}, "
            f"{h['access_report']['rows']} rows) | {spread(runs)} |"
            for name, runs in h.get("access_report", {}).get("ms", {}).items()
        ),
        "",
        f"CSV export of all {export['rows']:,} rows: {export['seconds']:.1f} s, {export['rows_per_s']:,.0f} rows/s, "
        f"peak RSS {export['peak_rss_mb']:.0f} MB (whole Python process). "
        f"`verify_audit_log` over the same rows: {h['verify_seconds']:.1f} s, {h['verify']}.",
    ]
    return [*lines, ""]
