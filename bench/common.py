"""What every benchmark case shares: the plan, the servers it starts (sandbox, portal,
the plain version), and the tools that time them (sequential requests, wrk)."""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_DATABASE_NAME", "solarproof_bench")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
API_KEY = "bench-key"
PROJECT = 2143
GUNICORN_CONFIG = "solarproof_portal/gunicorn.conf.py"
WORKER_BOOT_SECONDS = 3
# What the server under test calls its database connections (ConnectionPeak counts them).
SERVER_APPLICATION_NAME = "bench-server-under-test"


@dataclass(frozen=True)
class Plan:
    smoke: bool
    samples: int  # sequential requests per latency measurement
    runs: int  # repeats of each case
    seconds: int  # wrk duration
    warmup: int  # wrk warm-up seconds
    history_rows: int
    history_users: int
    history_projects: int


FULL = Plan(False, samples=300, runs=5, seconds=10, warmup=3, history_rows=1_000_000, history_users=200,
            history_projects=50_000)  # fmt: skip
SMOKE = Plan(True, samples=10, runs=1, seconds=1, warmup=1, history_rows=2_000, history_users=20, history_projects=500)


@dataclass(frozen=True)
class Bench:
    """What a case needs from the setup: the plan, collected static files, and the
    session cookie of a Sales user (valid for the portal and the plain version)."""

    plan: Plan
    static_root: Path
    cookie: str

    @property
    def headers(self) -> dict[str, str]:
        # As a browser asks: the portal gzips its pages, and pays for that in every figure.
        return {"Cookie": f"sessionid={self.cookie}", "Accept-Encoding": "gzip, deflate, br"}


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
    try:
        wait_for(f"http://127.0.0.1:{port}/", process)
        yield f"http://127.0.0.1:{port}/apidata.php"
    finally:
        process.terminate()
        process.wait(10)


def direct_url(upstream: str) -> str:
    return f"{upstream}?action=getcustomerofproject&project_id={PROJECT}&api_key={API_KEY}"


@contextmanager
def _gunicorn(app: str, env: dict[str, str], extra_args: list[str]) -> Iterator[str]:
    port = free_port()
    args = [str(Path(sys.executable).parent / "gunicorn"), "--config", GUNICORN_CONFIG, *extra_args, app]
    env = {**env, "PORT": str(port), "PGAPPNAME": SERVER_APPLICATION_NAME}
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/healthz", process)
        # One worker answering is not all of them: the others may still be importing
        # Django, which would land in the first measurement.
        time.sleep(WORKER_BOOT_SECONDS)
        yield url
    finally:
        process.terminate()
        process.wait(20)


@contextmanager
def portal(upstream: str, static_root: Path, **extra: str) -> Iterator[str]:
    """The portal under gunicorn with the production config (overridden only where a case says so)."""
    env = env_base(SOLARPROOF_API_URL=upstream, DJANGO_STATIC_ROOT=str(static_root), **extra)
    worker = ["--worker-class", "sync", "--threads", "1"] if extra.get("WORKER_CLASS") == "sync" else []
    with _gunicorn("bench.wsgi", env, worker) as url:
        yield url


@contextmanager
def plain(upstream: str) -> Iterator[str]:
    """The afternoon version (bench/plain), same gunicorn config, database and upstream."""
    with _gunicorn("bench.plain.wsgi", env_base(SOLARPROOF_API_URL=upstream), []) as url:
        yield url


def server_config(**extra: str) -> dict:
    """Workers, threads and database pool of the portal under a case's environment
    (bench/server_config.py), as gunicorn and Django read them."""
    env = env_base(DJANGO_STATIC_ROOT="/nonexistent", **extra)
    output = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "server_config.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(output.strip().splitlines()[-1])


def connection_bound(config: dict) -> int | None:
    """The most database connections one app server may open: workers x the pool's
    maximum, or workers x threads without a pool (each thread keeps its own)."""
    pool = config.get("pool")
    if pool and pool.get("max_size"):
        return config["workers"] * pool["max_size"]
    return config["workers"] * config["threads"] if config.get("conn_max_age") else None


def describe(config: dict) -> str:
    pool = config.get("pool")
    pooled = (
        f"psycopg pool {pool['min_size']}–{pool['max_size']} per worker (wait ≤ {pool['timeout']:g} s)"
        if pool
        else f"no pool (a connection per thread, CONN_MAX_AGE {config.get('conn_max_age')})"
    )
    threads = f"{config['threads']} thread{'s' if config['threads'] != 1 else ''}"
    return f"{config['workers']} {config['worker_class']} workers × {threads}, {pooled}"


class ConnectionPeak:
    """Peak client connections to the benchmark database held by the server under test
    (gunicorn started by this module names its connections SERVER_APPLICATION_NAME, through
    libpq's PGAPPNAME): pg_stat_activity every 20 ms. One server runs at a time, so this is
    one app server's count, its pool's idle connections included."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> ConnectionPeak:
        import psycopg

        self._conn = psycopg.connect(f"{SERVER}/postgres", autocommit=True)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _count(self) -> int:
        (count,) = self._conn.execute(
            # Client backends only: a parallel query's workers carry their leader's name.
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = %s AND backend_type = 'client backend'",
            [DB_NAME, SERVER_APPLICATION_NAME],
        ).fetchone()
        return count

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._count())

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


def project_url(base: str) -> str:
    return f"{base}/projects/{PROJECT}/"


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


def median(values: list[float]) -> float:
    return statistics.median(values)


def share(part: float, whole: float) -> float:
    """part / whole, NaN when there is no whole (a smoke run's second may complete nothing)."""
    return part / whole if whole else float("nan")


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


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


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def step(name: str) -> None:
    print(f"bench: {name} ... (load {load_average()})", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Row:
    """One line of the summary: a smoke run shows the figure and no verdict."""

    number: int
    what: str
    measured: str
    target: str = ""
    ok: bool | None = None  # None: no target, a figure for reference


# The servers a case can set side by side. At most one runs at a time: each gunicorn
# thread keeps its own PostgreSQL connection, and four servers' worth (4 x 32) would
# pass the shared server's max_connections (100).
SERIES_ENV: dict[str, dict[str, str]] = {
    "portal": {},
    "cached": {"LOOKUP_CACHE_SECONDS": "600"},
    "no_audit": {"BENCH_SKIP_AUDIT": "1"},
    "bare": {},
}


@contextmanager
def series_url(name: str, upstream: str, static_root: Path) -> Iterator[str]:
    """The URL a series measures, with its server running for the length of the block."""
    if name == "plain":
        with plain(upstream) as base:
            yield project_url(base)
        return
    with portal(upstream, static_root, **SERIES_ENV[name]) as base:
        yield f"{base}/bench/bare/" if name == "bare" else project_url(base)
