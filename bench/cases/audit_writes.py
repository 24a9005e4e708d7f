"""4. The audit write on its own: one writer, then 16 at once, and the chain verified after."""

from __future__ import annotations

import threading
import time

from bench.cases import throughput
from bench.common import PROJECT, Bench, Plan, Row, median, percentile

NAME = "audit"
WRITERS = 16


def run(bench: Bench) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from customers.audit import log as audit_log
    from customers.audit import verify
    from customers.models import Channel, LookupEvent
    from customers.outcomes import Outcome

    user, _ = get_user_model().objects.get_or_create(username="bench.audit")
    count = max(bench.plan.samples, 50)

    def write() -> float:
        started = time.perf_counter()
        audit_log.record_lookup(user=user, project_id=PROJECT, outcome=Outcome.FOUND, channel=Channel.WEB)
        return (time.perf_counter() - started) * 1000

    single = [write() for _ in range(count)]
    concurrent: list[float] = []
    lock = threading.Lock()

    def writer() -> None:
        mine = [write() for _ in range(count // 4)]
        with lock:
            concurrent.extend(mine)
        connection.close()

    before = LookupEvent.objects.count()
    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    verification = verify.verify_chain()
    return {
        "single_median_ms": median(single),
        "single_p95_ms": percentile(single, 0.95),
        "concurrent_median_ms": median(concurrent),
        "concurrent_p95_ms": percentile(concurrent, 0.95),
        "concurrent_writes_per_s": len(concurrent) / elapsed,
        "rows_written": LookupEvent.objects.count() - before,
        "expected_rows": WRITERS * (count // 4),
        "chain": str(verification),
        "chain_ok": verification.ok,
    }


def summary(results: dict) -> list[Row]:
    a, t = results[NAME], results[throughput.NAME]
    return [
        Row(4, "audit write, single writer (PostgreSQL, hash chain)",
            f"{a['single_median_ms']:.2f} ms median; lookups {median(t['portal_rps']):.0f}/s with, "
            f"{median(t['no_audit_rps']):.0f}/s without", "< 2 ms median", a["single_median_ms"] < 2),
        Row(4, f"audit write, {WRITERS} concurrent writers",
            f"{a['concurrent_median_ms']:.2f} ms median, {a['concurrent_writes_per_s']:.0f} writes/s; "
            f"{a['rows_written']}/{a['expected_rows']} rows; {a['chain']}", "chain never forks",
            a["chain_ok"] and a["rows_written"] == a["expected_rows"]),
    ]  # fmt: skip


def details(results: dict, plan: Plan) -> list[str]:
    a = results[NAME]
    return [
        "### 4. Audit write cost",
        "",
        "`customers.audit.log.record_lookup()` on PostgreSQL (one statement: a database function takes the chain's "
        f"advisory lock, reads the head, hashes and inserts; committed on return): single writer median "
        f"{a['single_median_ms']:.2f} ms, p95 {a['single_p95_ms']:.2f} ms; {WRITERS} threads writing at once: "
        f"median {a['concurrent_median_ms']:.2f} ms, p95 {a['concurrent_p95_ms']:.2f} ms, "
        f"{a['concurrent_writes_per_s']:.0f} writes/s in all. Afterwards: {a['chain']}.",
        "",
    ]
