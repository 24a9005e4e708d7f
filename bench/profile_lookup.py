"""Where one lookup's time goes (bench/NOTES.md): the result page called in-process
through the WSGI handler, no test client, against a real sandbox, PostgreSQL and Redis.

    python bench/profile_lookup.py                 # portal: CPU and wall ms per request, per phase
    python bench/profile_lookup.py --plain         # the plain version, same measure (run the portal first)
    python bench/profile_lookup.py --cprofile      # and a cProfile listing (internal time)
    python bench/profile_lookup.py --load          # CPU per request of each process under wrk (32 connections)

It recreates BENCH_DATABASE_NAME (default solarproof_profile) on the machine's
PostgreSQL. CPU times are process CPU, which a busy machine inflates far less than wall
time; compare before/after in back-to-back runs.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import importlib
import io
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("BENCH_DATABASE_NAME", "solarproof_profile")

from bench.common import PROJECT, ROOT, env_base, plain, portal, project_url, sandbox, wrk

COOKIE_FILE = Path(tempfile.gettempdir()) / f"{os.environ['BENCH_DATABASE_NAME']}.cookie"
PHASES = [  # (module, function or Class.method): the parts of one lookup, outermost first
    ("customers.views", "_project_response"),
    ("customers.views", "render"),
    ("customers.lookups", "look_up_customer"),
    ("customers.upstream.solarproof", "SolarProofClient.get_customer_of_project"),
    ("customers.audit.log", "append"),
    ("customers.lookups", "hit_rate_limit"),
    ("customers.views", "customer_card"),
    ("customers.history.queries", "recent_lookups"),
    ("accounts.session_store", "SessionStore._get_session_from_db"),
]
totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])


def timed(module_name: str, attribute: str) -> None:
    owner = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[attribute][0] += time.process_time() - cpu
            totals[attribute][1] += time.perf_counter() - wall

    setattr(owner, name, wrapper)


def wsgi_caller(app, cookie: str):  # type: ignore[no-untyped-def]
    def call() -> bytes:
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": f"/projects/{PROJECT}/", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1", "HTTP_COOKIE": f"sessionid={cookie}", "HTTP_USER_AGENT": "profile",
            "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
        }  # fmt: skip
        status = []
        body = b"".join(app(environ, lambda line, headers: status.append(line)))
        if not status[0].startswith("200"):
            raise RuntimeError(f"{status[0]}: {body[:300]!r}")
        return body

    return call


def per_request(call, count: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        call()
    return 1000 * (time.process_time() - cpu) / count, 1000 * (time.perf_counter() - wall) / count


def in_process(args: argparse.Namespace, upstream: str) -> None:
    if args.plain:
        os.environ.update(env_base(SOLARPROOF_API_URL=upstream, DJANGO_SETTINGS_MODULE="bench.plain.settings"))
        cookie = COOKIE_FILE.read_text()
    else:
        from bench import database

        cookie = database.set_up(Path(tempfile.mkdtemp()))
        COOKIE_FILE.write_text(cookie)
        from django.conf import settings

        settings.SOLARPROOF_DEMO, settings.SOLARPROOF_API_URL = False, upstream
    from django.core.wsgi import get_wsgi_application

    call = wsgi_caller(get_wsgi_application(), cookie)
    per_request(call, 50)  # warm-up: connections, prepared statements, template caches
    if not args.plain:
        for module_name, attribute in PHASES:
            timed(module_name, attribute)
    for _ in range(3):
        totals.clear()
        cpu, wall = per_request(call, args.requests)
        print(f"{'plain' if args.plain else 'portal'}: CPU {cpu:.2f} ms, wall {wall:.2f} ms per request")
    for attribute, (cpu, wall) in totals.items():
        print(f"  {attribute:45} CPU {1000 * cpu / args.requests:5.2f} ms  wall {1000 * wall / args.requests:5.2f} ms")
    if args.cprofile:
        profile = cProfile.Profile()
        profile.runcall(per_request, call, args.requests)
        pstats.Stats(profile).sort_stats("tottime").print_stats(40)


def under_load(upstream: str) -> None:
    """CPU seconds each kind of process spent per request while wrk ran (Linux /proc)."""
    cookie, static = COOKIE_FILE.read_text(), Path(tempfile.mkdtemp())
    import subprocess

    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT,
                   env=env_base(DJANGO_STATIC_ROOT=str(static)), check=True)  # fmt: skip
    headers = {"Cookie": f"sessionid={cookie}", "Accept-Encoding": "gzip"}
    for name, server in (("portal", lambda: portal(upstream, static)), ("plain", lambda: plain(upstream))):
        with server() as base:
            url = project_url(base)
            wrk(url, connections=32, seconds=2, headers=headers)
            before, started = _cpu_by_kind(), time.monotonic()
            rate = wrk(url, connections=32, seconds=8, headers=headers)["rps"]
            spent, requests = _cpu_by_kind(), rate * (time.monotonic() - started)
        parts = {kind: 1000 * (spent[kind] - before.get(kind, 0)) / requests for kind in spent}
        print(f"{name}: {rate:.0f} req/s; CPU ms per request: "
              + ", ".join(f"{kind} {ms:.2f}" for kind, ms in sorted(parts.items())) + f"; all {sum(parts.values()):.2f}")  # fmt: skip


def _cpu_by_kind() -> dict[str, float]:
    tick, kinds = os.sysconf("SC_CLK_TCK"), defaultdict(float)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kind = next((k for k in ("postgres", "redis", "run_sandbox", "gunicorn") if k in command), "other")
        kinds[kind] += (int(fields[11]) + int(fields[12])) / tick
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--load", action="store_true")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with sandbox(0) as upstream:
        under_load(upstream) if args.load else in_process(args, upstream)


if __name__ == "__main__":
    main()
