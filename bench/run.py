"""Benchmarks: what the portal adds to Solar Proof's own time, and how far one machine
carries it. Every figure is a ratio against an anchor measured in the same run.

    python bench/run.py            # the full run (make bench): writes bench/RESULTS.md
    python bench/run.py --smoke    # seconds, no thresholds (CI): checks the scripts still run

Needs PostgreSQL (BENCH_DATABASE_URL, default the machine's) and Redis (BENCH_REDIS_URL),
and wrk. It creates and drops its own database, solarproof_bench.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "solarproof_bench"
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
API_KEY = "bench-key"
PROJECT = 2143


@dataclass(frozen=True)
class Plan:
    samples: int  # sequential requests per latency measurement
    runs: int  # repeats of each case
    seconds: int  # wrk duration
    warmup: int  # wrk warm-up seconds
    history_rows: int
    history_users: int
    history_projects: int


FULL = Plan(
    samples=300, runs=5, seconds=10, warmup=3, history_rows=1_000_000, history_users=200, history_projects=50_000
)
SMOKE = Plan(samples=10, runs=1, seconds=1, warmup=1, history_rows=2_000, history_users=20, history_projects=500)


def env_base(**extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-" + "x" * 30,
        "AUDIT_SIGNING_KEY": "rVFAa1zecVumbHCwVNJaiUm5XBDwhkWnrL3ZV5kUZW8=",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"{SERVER}/{DB_NAME}",
        "REDIS_URL": REDIS,
        "SOLARPROOF_API_KEY": API_KEY,
        "LOOKUP_RATE_LIMIT": "1000000/m",
        "LOOKUP_CACHE_SECONDS": "0",
        "BIND_HOST": "127.0.0.1",
        "GUNICORN_LOG_LEVEL": "warning",
        **extra,
    }


def free_port() -> int:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):
            # Refused before gunicorn listens; a timeout while its workers are still booting.
            time.sleep(0.1)
    raise TimeoutError(url)


@contextmanager
def sandbox(latency_ms: int) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_sandbox", "--port", str(port), "--latency-ms", str(latency_ms),
         "--api-key", API_KEY],
        cwd=ROOT, env=env_base(), stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/apidata.php"
    try:
        wait_for(f"http://127.0.0.1:{port}/", process)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def portal(upstream: str, static_root: Path, **extra: str) -> Iterator[str]:
    """gunicorn with the production config (overridden only where a case says so)."""
    port = free_port()
    env = env_base(SOLARPROOF_API_URL=upstream, PORT=str(port), DJANGO_STATIC_ROOT=str(static_root), **extra)
    config = extra.pop("GUNICORN_CONFIG", "solarproof_portal/gunicorn.conf.py")
    args = [str(Path(sys.executable).parent / "gunicorn"), "--config", config]
    if extra.get("WORKER_CLASS") == "sync":
        args += ["--worker-class", "sync", "--threads", "1"]
    process = subprocess.Popen([*args, "bench.wsgi"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/healthz", process)
        yield url
    finally:
        process.terminate()
        process.wait(20)


def timed_gets(session: requests.Session, url: str, count: int, headers: dict[str, str] | None = None) -> list[float]:
    for _ in range(max(5, count // 10)):  # warm-up: connections, caches, code paths
        session.get(url, headers=headers, timeout=10)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, headers=headers, timeout=10)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def wrk(url: str, *, connections: int, seconds: int, headers: dict[str, str]) -> dict[str, float]:
    # A 10 s timeout: a slow answer is counted as slow, not as a failure (wrk's default is 2 s).
    args = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": rate,
        "non_2xx": int(non_2xx[1]) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


# --- setup -------------------------------------------------------------------------


def setup_database(plan: Plan, static_root: Path) -> str:
    """A fresh database, migrated; returns the session cookie of a Sales user."""
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    os.environ.update(env_base(DJANGO_STATIC_ROOT=str(static_root), SOLARPROOF_DEMO="true"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "solarproof_portal.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    return session_cookie("bench.sales", "Sales")


def session_cookie(username: str, role: str) -> str:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username=username)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


# --- cases -------------------------------------------------------------------------


def case_latency(plan: Plan, static_root: Path, cookie: str) -> dict:
    headers = {"Cookie": f"sessionid={cookie}"}
    results = {}
    for latency in (0, 50):
        with sandbox(latency) as upstream:
            direct_runs, portal_runs, cached_runs = [], [], []
            params = f"?action=getcustomerofproject&project_id={PROJECT}&api_key={API_KEY}"
            with (
                portal(upstream, static_root) as base,
                portal(upstream, static_root, LOOKUP_CACHE_SECONDS="600") as cached,
            ):
                for _ in range(plan.runs):
                    direct_runs.append(timed_gets(requests.Session(), upstream + params, plan.samples))
                    portal_runs.append(
                        timed_gets(requests.Session(), f"{base}/projects/{PROJECT}/", plan.samples, headers)
                    )
                    cached_runs.append(
                        timed_gets(requests.Session(), f"{cached}/projects/{PROJECT}/", plan.samples, headers)
                    )
        added_median = [
            statistics.median(p) - statistics.median(d) for p, d in zip(portal_runs, direct_runs, strict=True)
        ]
        added_p95 = [percentile(p, 0.95) - percentile(d, 0.95) for p, d in zip(portal_runs, direct_runs, strict=True)]
        results[latency] = {
            "direct_median_ms": [statistics.median(d) for d in direct_runs],
            "portal_median_ms": [statistics.median(p) for p in portal_runs],
            "added_median_ms": added_median,
            "added_p95_ms": added_p95,
            "cached_median_ms": [statistics.median(c) for c in cached_runs],
        }
    return results


def case_throughput(plan: Plan, static_root: Path, cookie: str) -> dict:
    headers = {"Cookie": f"sessionid={cookie}"}
    bare, lookup, lookup_no_audit = [], [], []
    with sandbox(0) as upstream:
        with portal(upstream, static_root) as base:
            wrk(f"{base}/bench/bare/", connections=16, seconds=plan.warmup, headers={})
            wrk(f"{base}/projects/{PROJECT}/", connections=16, seconds=plan.warmup, headers=headers)
            for _ in range(plan.runs):
                bare.append(wrk(f"{base}/bench/bare/", connections=16, seconds=plan.seconds, headers={})["rps"])
                lookup.append(
                    wrk(f"{base}/projects/{PROJECT}/", connections=16, seconds=plan.seconds, headers=headers)["rps"]
                )
        with portal(upstream, static_root, BENCH_SKIP_AUDIT="1") as base:
            wrk(f"{base}/projects/{PROJECT}/", connections=16, seconds=plan.warmup, headers=headers)
            for _ in range(plan.runs):
                lookup_no_audit.append(
                    wrk(f"{base}/projects/{PROJECT}/", connections=16, seconds=plan.seconds, headers=headers)["rps"]
                )
    return {"bare_rps": bare, "lookup_rps": lookup, "lookup_without_audit_rps": lookup_no_audit}


WORKER_SETUPS = {
    "sync, 2×CPU workers": {"WORKER_CLASS": "sync"},
    "gthread, 2×CPU workers × 8 threads (default)": {},
    "gthread, 2×CPU workers × 16 threads": {"GUNICORN_THREADS": "16"},
}


def case_slow_upstream(plan: Plan, static_root: Path, cookie: str) -> dict:
    headers = {"Cookie": f"sessionid={cookie}"}
    results = {}
    with sandbox(100) as upstream:
        for name, extra in WORKER_SETUPS.items():
            runs = []
            with portal(upstream, static_root, **extra) as base:
                wrk(f"{base}/projects/{PROJECT}/", connections=64, seconds=plan.warmup, headers=headers)
                for _ in range(plan.runs):
                    runs.append(
                        wrk(f"{base}/projects/{PROJECT}/", connections=64, seconds=plan.seconds, headers=headers)
                    )
            results[name] = runs
    return results


def case_audit_writes(plan: Plan) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from customers import audit
    from customers.models import Channel, LookupEvent, Outcome

    user, _ = get_user_model().objects.get_or_create(username="bench.audit")
    count = max(plan.samples, 50)

    def write() -> float:
        started = time.perf_counter()
        LookupEvent.objects.record(user=user, project_id=PROJECT, outcome=Outcome.FOUND, channel=Channel.WEB)
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
    threads = [threading.Thread(target=writer) for _ in range(16)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    verification = audit.verify_chain()
    return {
        "single_median_ms": statistics.median(single),
        "single_p95_ms": percentile(single, 0.95),
        "concurrent_median_ms": statistics.median(concurrent),
        "concurrent_p95_ms": percentile(concurrent, 0.95),
        "concurrent_writes_per_s": len(concurrent) / elapsed,
        "rows_written": LookupEvent.objects.count() - before,
        "expected_rows": 16 * (count // 4),
        "chain": str(verification),
        "chain_ok": verification.ok,
    }


def case_page_weight(static_root: Path, cookie: str) -> dict:
    headers = {"Cookie": f"sessionid={cookie}", "Accept-Encoding": "br, gzip"}
    with sandbox(0) as upstream, portal(upstream, static_root, LOOKUP_CACHE_SECONDS="600") as base:
        page = requests.get(f"{base}/projects/{PROJECT}/", headers=headers, stream=True, timeout=10)
        html_raw = page.raw.read(decode_content=False)
        html = page.content if page.content else b""
        text = requests.get(f"{base}/projects/{PROJECT}/", headers=headers, timeout=10).text
        # Staff mostly look up the next customer from the result page: htmx fetches the partial.
        partial = requests.get(
            f"{base}/?project={PROJECT}", headers={**headers, "HX-Request": "true"}, stream=True, timeout=10
        )
        partial_raw = partial.raw.read(decode_content=False)
        assets = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', text)
        sizes = {}
        cache_control = {}
        for asset in assets:
            answer = requests.get(base + asset, headers=headers, stream=True, timeout=10)
            sizes[asset] = len(answer.raw.read(decode_content=False))
            cache_control[asset] = answer.headers.get("Cache-Control", "")
    first = len(html_raw) + sum(sizes.values())
    return {
        "html_bytes": len(html_raw),
        "html_uncompressed_bytes": len(html) or len(text.encode()),
        "assets": sizes,
        "asset_cache_control": cache_control,
        "first_visit_bytes": first,
        "repeat_visit_bytes": len(html_raw),  # hashed static files are cached for a year
        "next_lookup_bytes": len(partial_raw),  # the next search from the same page (htmx partial)
    }


def fill_history(plan: Plan) -> None:
    """plan.history_rows events over a year, as an honest hash chain, written with COPY."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from customers import audit

    users = [get_user_model().objects.get_or_create(username=f"staff{n:03d}")[0] for n in range(plan.history_users)]
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / plan.history_rows
    columns = [*audit.CHAIN_FIELDS, "hash"]
    head_sequence, prev = audit._head()  # continue the chain the other cases wrote
    first_sequence = head_sequence + 1
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(f"COPY customers_lookupevent ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for index in range(plan.history_rows):
            user = users[(index * 7919) % len(users)]
            values = {
                "sequence": first_sequence + index,
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
            prev = values["hash"] = audit.event_hash(values)
            copy.write_row([values[name] for name in columns])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_lookupevent")


def case_history(plan: Plan) -> dict:
    from django.test import Client

    filled = time.perf_counter()
    fill_history(plan)
    fill_seconds = time.perf_counter() - filled
    admin = Client()
    from django.conf import settings as django_settings

    admin.cookies[django_settings.SESSION_COOKIE_NAME] = session_cookie("bench.admin", "Admins")
    busy_project = 1000 + (5 * 104729) % plan.history_projects
    month_ago = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    pages = {
        "first history page": "/history/",
        "per-project page": f"/history/?project={busy_project}",
        "per-user 30-day page": f"/history/?user=staff007&from={month_ago}",
    }
    timings: dict[str, list[float]] = {}
    from django.core.cache import cache

    cache.clear()
    cold = time.perf_counter()
    assert admin.get("/history/").status_code == 200
    summary_cold_ms = (time.perf_counter() - cold) * 1000
    for name, url in pages.items():
        admin.get(url)
        runs = []
        for _ in range(max(7, plan.runs)):
            started = time.perf_counter()
            response = admin.get(url)
            runs.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        timings[name] = runs
    verify_started = time.perf_counter()
    from customers import audit

    verification = audit.verify_chain()
    verify_seconds = time.perf_counter() - verify_started
    export = subprocess.run(
        [sys.executable, str(ROOT / "bench/export_probe.py")],
        cwd=ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        "rows": plan.history_rows,
        "fill_seconds": fill_seconds,
        "first_page_cold_ms": summary_cold_ms,
        "pages_ms": timings,
        "export": json.loads(export.stdout.strip().splitlines()[-1]),
        "verify_seconds": verify_seconds,
        "verify": str(verification),
    }


# --- report ------------------------------------------------------------------------


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
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(results: dict, plan: Plan) -> str:
    m = results["machine"]
    lat, thr, slow = results["latency"], results["throughput"], results["slow_upstream"]
    aud, weight, hist = results["audit"], results["page_weight"], results["history"]
    lookup_rps = statistics.median(thr["lookup_rps"])
    bare_rps = statistics.median(thr["bare_rps"])
    ideal = min(lookup_rps, 64 / 0.1)
    lines = [
        "# Benchmark results",
        "",
        f"Measured {m['date']} by `make bench` (`bench/run.py`): {plan.runs} runs of each case, "
        "median with the range (min–max) in brackets; every figure is set against its anchor from the same run.",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory']}; Python {m['python']}, Django {m['django']}, "
        f"gunicorn {m['gunicorn']} (`solarproof_portal/gunicorn.conf.py`), PostgreSQL {m['postgresql']}, "
        f"Redis {m['redis']}, load from wrk {m['wrk']} on the same machine. The sandbox is a real HTTP server "
        "(`manage.py run_sandbox`).",
        "",
        "## Summary",
        "",
        "| # | what | measured | target | |",
        "|---|---|---|---|---|",
    ]
    rows = []
    for latency in (0, 50):
        added = lat[latency]
        rows.append(
            (
                f"1. added latency, upstream {latency} ms (uncached)",
                f"median {spread(added['added_median_ms'])} ms, p95 {spread(added['added_p95_ms'])} ms",
                "< 5 ms median",
                statistics.median(added["added_median_ms"]) < 5,
            )
        )
    cached = lat[0]["cached_median_ms"]
    rows.append(("1. cached lookup, total", f"{spread(cached)} ms", "< 5 ms", statistics.median(cached) < 5))
    rows.append(
        (
            "2. lookup page vs bare Django view (req/s)",
            f"{lookup_rps:.0f} vs {bare_rps:.0f} = {100 * lookup_rps / bare_rps:.0f} %",
            "≥ 50 %",
            lookup_rps / bare_rps >= 0.5,
        )
    )
    default = slow["gthread, 2×CPU workers × 8 threads (default)"]
    default_rps = statistics.median(run["rps"] for run in default)
    failures = sum(run["non_2xx"] + run["socket_errors"] for run in default)
    rows.append(
        (
            "3. 100 ms upstream, 64 clients (gthread default)",
            f"{default_rps:.0f} req/s = {100 * default_rps / ideal:.0f} % of ideal {ideal:.0f}; {failures} failed",
            "≥ 80 %, none failing",
            default_rps >= 0.8 * ideal and failures == 0,
        )
    )
    no_audit = statistics.median(thr["lookup_without_audit_rps"])
    rows.append(
        (
            "4. audit write, single writer (PostgreSQL, hash chain)",
            f"{aud['single_median_ms']:.2f} ms median; lookups {lookup_rps:.0f}/s with, {no_audit:.0f}/s without",
            "< 2 ms median",
            aud["single_median_ms"] < 2,
        )
    )
    rows.append(
        (
            "4. audit write, 16 concurrent writers",
            f"{aud['concurrent_median_ms']:.2f} ms median, {aud['concurrent_writes_per_s']:.0f} writes/s; "
            f"{aud['rows_written']}/{aud['expected_rows']} rows; {aud['chain']}",
            "chain never forks",
            aud["chain_ok"] and aud["rows_written"] == aud["expected_rows"],
        )
    )
    rows.append(
        (
            "5. page weight, first visit (HTML + CSS + JS, compressed)",
            f"{weight['first_visit_bytes'] / 1024:.1f} KB",
            "< 40 KB",
            weight["first_visit_bytes"] < 40 * 1024,
        )
    )
    rows.append(
        (
            "5. page weight, repeat visit (whole page; static files cached)",
            f"{weight['repeat_visit_bytes'] / 1024:.1f} KB",
            "< 8 KB",
            weight["repeat_visit_bytes"] < 8 * 1024,
        )
    )
    rows.append(
        (
            "5. page weight, next lookup from the result page (htmx partial)",
            f"{weight['next_lookup_bytes'] / 1024:.1f} KB",
            "< 8 KB",
            weight["next_lookup_bytes"] < 8 * 1024,
        )
    )
    for name, runs in hist["pages_ms"].items():
        rows.append((f"6. history, {name} ({hist['rows']:,} events)", f"{spread(runs)} ms", "< 50 ms",
                     statistics.median(runs) < 50))  # fmt: skip
    export = hist["export"]
    rows.append(("6. CSV export of every event", f"{export['rows_per_s']:,.0f} rows/s", "> 100,000 rows/s",
                 export["rows_per_s"] > 100_000))  # fmt: skip
    rows.append(("6. CSV export, peak memory (whole process)", f"{export['peak_rss_mb']:.0f} MB", "< 150 MB",
                 export["peak_rss_mb"] < 150))  # fmt: skip
    for index, (what, measured, target, ok) in enumerate(rows, start=1):
        number = what.split(".", 1)[0]
        lines.append(f"| {number} | {what.split('. ', 1)[1]} | {measured} | {target} | {verdict(ok)} |")
        del index
    lines += [
        "",
        "## Details",
        "",
        "### 1. Added latency",
        "",
        "Sequential signed-in requests through gunicorn (production config, cache off) against a direct call "
        f"to the sandbox with a pooled `requests.Session`; {plan.samples} requests per run after a warm-up.",
        "",
        "| upstream | direct median (ms) | portal median (ms) | added median (ms) | added p95 (ms) | cached total (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for latency in (0, 50):
        r = lat[latency]
        lines.append(
            f"| {latency} ms | {spread(r['direct_median_ms'])} | {spread(r['portal_median_ms'])} | "
            f"{spread(r['added_median_ms'])} | {spread(r['added_p95_ms'])} | {spread(r['cached_median_ms'])} |"
        )
    lines += [
        "",
        "### 2. Throughput against Django's own ceiling",
        "",
        f"wrk, 16 connections, {plan.seconds} s per run, upstream 0 ms, cache off, PostgreSQL with the audit write.",
        "",
        "| endpoint | req/s |",
        "|---|---|",
        f"| bare Django view (`/bench/bare/`, same settings, middleware and gunicorn config) | {spread(thr['bare_rps'])} |",
        f"| lookup page (`/projects/{PROJECT}/`) | {spread(thr['lookup_rps'])} |",
        f"| lookup page, audit write replaced by a no-op (bench only) | {spread(thr['lookup_without_audit_rps'])} |",
        "",
        "### 3. Waiting on a slow upstream: the worker class",
        "",
        f"Sandbox at 100 ms, wrk with 64 connections and a 10 s timeout, {plan.seconds} s per run. "
        "Failed = non-2xx answers plus socket errors. Ideal = min(lookup rate from 2, "
        f"64 / 0.1 s) = {ideal:.0f} req/s.",
        "",
        "| gunicorn | req/s | % of ideal | failed requests |",
        "|---|---|---|---|",
    ]
    for name, runs in slow.items():
        rates = [run["rps"] for run in runs]
        failed = sum(run["non_2xx"] + run["socket_errors"] for run in runs)
        lines.append(f"| {name} | {spread(rates)} | {100 * statistics.median(rates) / ideal:.0f} % | {failed} |")
    lines += [
        "",
        "### 4. Audit write cost",
        "",
        f"`LookupEvent.objects.record()` on PostgreSQL (advisory lock, read head, hash, insert, commit): single writer "
        f"median {aud['single_median_ms']:.2f} ms, p95 {aud['single_p95_ms']:.2f} ms; 16 threads writing at once: "
        f"median {aud['concurrent_median_ms']:.2f} ms, p95 {aud['concurrent_p95_ms']:.2f} ms, "
        f"{aud['concurrent_writes_per_s']:.0f} writes/s in all. Afterwards: {aud['chain']}.",
        "",
        "### 5. Page weight",
        "",
        f"Result page HTML {weight['html_bytes']:,} bytes over the wire ({weight['html_uncompressed_bytes']:,} "
        "uncompressed); static files (compressed, as whitenoise serves them):",
        "",
    ]
    for asset, size in weight["assets"].items():
        lines.append(f"- `{asset}`: {size:,} bytes, `Cache-Control: {weight['asset_cache_control'][asset]}`")
    lines += [
        "",
        "### 6. History at scale",
        "",
        f"{hist['rows']:,} events over {plan.history_users} users and {plan.history_projects:,} projects "
        f"(filled with COPY in {hist['fill_seconds']:.0f} s). Server time per page, in-process Django test client "
        "as an admin (the review record written each time included); the first page's 30-day summary is cached "
        f"for a minute: cold, it took {hist['first_page_cold_ms']:.0f} ms.",
        "",
        "| page | median (range), ms |",
        "|---|---|",
    ]
    for name, runs in hist["pages_ms"].items():
        lines.append(f"| {name} | {spread(runs)} |")
    lines += [
        "",
        f"CSV export of all {export['rows']:,} rows: {export['seconds']:.1f} s, {export['rows_per_s']:,.0f} rows/s, "
        f"peak RSS {export['peak_rss_mb']:.0f} MB (whole Python process). "
        f"`verify_audit_log` over the same rows: {hist['verify_seconds']:.1f} s, {hist['verify']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few seconds per case, for CI; no thresholds")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    plan = SMOKE if args.smoke else FULL
    out = args.out or (ROOT / "bench" / ("smoke-results.md" if args.smoke else "RESULTS.md"))
    with tempfile.TemporaryDirectory() as static_dir:
        static_root = Path(static_dir)
        step("database and static files")
        cookie = setup_database(plan, static_root)
        results = {"machine": machine()}
        cases: list[tuple[str, Callable[[], object]]] = [
            ("latency", lambda: case_latency(plan, static_root, cookie)),
            ("throughput", lambda: case_throughput(plan, static_root, cookie)),
            ("slow_upstream", lambda: case_slow_upstream(plan, static_root, cookie)),
            ("audit", lambda: case_audit_writes(plan)),
            ("page_weight", lambda: case_page_weight(static_root, cookie)),
            ("history", lambda: case_history(plan)),
        ]
        for name, run in cases:
            step(name)
            results[name] = run()
    text = report(results, plan)
    out.write_text(text)
    if not args.smoke and args.out is None:
        update_readme(text)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    print(text)
    print(
        f"\nbench: wrote {out} (peak RSS of this driver {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)"
    )


def update_readme(results: str) -> None:
    """Copy the summary table into the README, between its bench markers."""
    readme = ROOT / "README.md"
    table = results.split("## Summary\n\n", 1)[1].split("\n\n", 1)[0]
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    text = readme.read_text()
    if start in text and end in text:
        before, rest = text.split(start, 1)
        readme.write_text(f"{before}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")


def step(name: str) -> None:
    print(f"bench: {name} ...", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
