"""A neighbourhood to break: the portal under gunicorn with the production config, its own
PostgreSQL and Redis (stopped and started at will, never the machine's shared ones), the
sandbox, and a TCP server that accepts and never answers. Used by the fault suite
(tests/faults, `make faults`) and by bench/faults.py, which also runs it against an older
checkout for "before" figures, so nothing here imports the project or Django.

Ports: FAULTS_PORT_BASE (default 8220) and the nine after it: the portal, PostgreSQL,
Redis, the black hole, the sandbox.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import requests

BASE_PORT = int(os.environ.get("FAULTS_PORT_BASE", "8220"))
PORTAL_PORT, POSTGRES_PORT, REDIS_PORT, BLACK_HOLE_PORT, SANDBOX_PORT = range(BASE_PORT, BASE_PORT + 5)
API_KEY = "faults-api-key"
PASSWORD_FREE_SECRET = "faults-only-secret-key-" + "x" * 30
HTTPS = {"X-Forwarded-Proto": "https"}


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


class Postgres:
    """A PostgreSQL cluster of its own, as the postgres user, in a temporary directory."""

    def __init__(self, port: int = POSTGRES_PORT, *, max_connections: int = 40) -> None:
        self.port = port
        self.max_connections = max_connections
        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
        self.data = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        shutil.chown(self.data, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/portal"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(  # noqa: S603
            ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],  # noqa: S607
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/tmp",  # the postgres user may not read the caller's directory
        )

    def start(self) -> Postgres:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.data} "
            f"-c max_connections={self.max_connections} -c fsync=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.data / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def sql(self, statement: str, database: str = "portal") -> str:
        result = subprocess.run(  # noqa: S603
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-Atc", statement],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return result.stdout.strip()

    def remove(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


class Redis:
    def __init__(self, port: int = REDIS_PORT) -> None:
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        self.process = subprocess.Popen(  # noqa: S603
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],  # noqa: S607
            stdout=subprocess.DEVNULL,
        )
        _wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class BlackHole:
    """Accepts every connection, never answers: a hung Solar Proof or Redis."""

    def __init__(self, port: int = BLACK_HOLE_PORT) -> None:
        self.port = port
        self._listener = socket.create_server(("127.0.0.1", port), backlog=512)
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)

    def stop(self) -> None:
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self._held:
            conn.close()


@contextmanager
def sandbox(root: Path, *, latency_ms: int = 0, port: int = SANDBOX_PORT) -> Iterator[str]:
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "run_sandbox", "--port", str(port), "--latency-ms", str(latency_ms),
         "--api-key", API_KEY],
        cwd=root, env=portal_env(database_url="sqlite:///:memory:"), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port)
        yield f"http://127.0.0.1:{port}/apidata.php"
    finally:
        process.terminate()
        process.wait(10)


def portal_env(*, database_url: str, **extra: str) -> dict[str, str]:
    """Production settings, as the issue's measurements ran them: 2 workers x 8 threads."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": PASSWORD_FREE_SECRET,
        "AUDIT_SIGNING_KEY": "1gjkCzBnqJpov274HgdLdd7n43pUidgj2Fri1oBSTMo=",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DATABASE_URL": database_url,
        "SOLARPROOF_API_KEY": API_KEY,
        "SOLARPROOF_TIMEOUT": "2",
        "LOOKUP_CACHE_SECONDS": "0",
        "LOOKUP_RATE_LIMIT": "100000/m",
        "BIND_HOST": "127.0.0.1",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "8",
        "GUNICORN_LOG_LEVEL": "warning",
        **extra,
    }


def manage(root: Path, env: dict[str, str], *args: str, stdin: str = "") -> str:
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=root, env=env, input=stdin, capture_output=True, text=True,
        check=True, timeout=300,
    ).stdout  # fmt: skip


_SESSIONS = """
import json
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
keys = {}
for name, role in %r:
    user, _ = get_user_model().objects.get_or_create(username=name)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user, backend="accounts.backends.PasswordBackend")
    keys[name] = client.cookies[settings.SESSION_COOKIE_NAME].value
print("SESSIONS " + json.dumps(keys))
"""


def prepare_database(root: Path, env: dict[str, str], users: list[tuple[str, str]]) -> dict[str, str]:
    """Migrate, collect static files, and sign ``users`` (name, role) in: their session keys."""
    manage(root, env, "migrate", "--noinput")
    manage(root, env, "collectstatic", "--noinput")
    out = manage(root, env, "shell", stdin=_SESSIONS % (users,))
    return json.loads(out.split("SESSIONS ", 1)[1])


@contextmanager
def gunicorn(root: Path, env: dict[str, str], *, log: Path, port: int = PORTAL_PORT) -> Iterator[str]:
    with open(log, "ab") as out:
        process = subprocess.Popen(  # noqa: S603
            [str(Path(sys.executable).parent / "gunicorn"), "--config", "solarproof_portal/gunicorn.conf.py",
             "solarproof_portal.wsgi"],
            cwd=root, env={**env, "PORT": str(port)}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"gunicorn exited with {process.returncode}: see {log}")
                with suppress(requests.RequestException):
                    if requests.get(base + "/healthz", timeout=1).ok:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError("gunicorn did not come up")
                time.sleep(0.2)
            time.sleep(3)  # every worker booted, not only the first
            yield base
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@dataclass
class Answer:
    started: float
    seconds: float
    status: int  # 0: no answer at all (refused, reset, or the client's own timeout)
    request_id: str = ""
    body: str = ""


@dataclass
class Load:
    """Answers of ``clients`` threads asking again and again, and of a probe beside them."""

    answers: list[Answer] = field(default_factory=list)
    probes: list[Answer] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.answers) / self.seconds if self.seconds else 0.0

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for answer in self.answers:
            counts[answer.status] = counts.get(answer.status, 0) + 1
        return dict(sorted(counts.items()))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _get(url: str, headers: dict[str, str], timeout: float, keep_body: Callable[[int], bool]) -> Answer:
    started = time.monotonic()
    try:
        response = requests.get(url, headers=headers, timeout=timeout)
    except requests.RequestException:
        return Answer(started, time.monotonic() - started, 0)
    return Answer(
        started,
        time.monotonic() - started,
        response.status_code,
        response.headers.get("X-Request-ID", ""),
        response.text if keep_body(response.status_code) else "",
    )


def warm_up(base: str, cookie: str, *, clients: int = 16, rounds: int = 3) -> None:
    """A running portal is warm when a neighbour fails: every thread with its database
    connection, the templates compiled. So is this one before it is measured."""
    headers = {**HTTPS, "Cookie": f"sessionid={cookie}"}
    for _ in range(rounds):
        threads = [
            threading.Thread(target=requests.get, args=(base + "/",), kwargs={"headers": headers, "timeout": 30})
            for _ in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def run_load(
    base: str,
    *,
    paths: Callable[[int, int], str],
    cookies: list[str],
    clients: int,
    seconds: float,
    probe_every: float = 0.05,
    timeout: float = 30,
    pause: float = 0.0,
    during: Callable[[], None] | None = None,
) -> Load:
    """``clients`` threads, each asking for ``paths(client, n)`` one after another (a new
    connection each time, as many staff would) for ``seconds``, signed in with the
    session ``cookies[client % len]``, ``pause`` s between one answer and the next ask;
    a probe of /healthz every ``probe_every`` s.
    ``during`` runs in the calling thread meanwhile (stop a database, say)."""
    load = Load()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    done = threading.Event()

    def client(number: int) -> None:
        headers = {**HTTPS, "Cookie": f"sessionid={cookies[number % len(cookies)]}"}
        n = 0
        while time.monotonic() < stop_at:
            answer = _get(base + paths(number, n), headers, timeout, lambda status: status != 0)
            with lock:
                load.answers.append(answer)
            n += 1
            if pause:
                time.sleep(pause)

    def probe() -> None:
        while not done.is_set():
            answer = _get(base + "/healthz", {}, 10, lambda status: False)
            with lock:
                load.probes.append(answer)
            done.wait(probe_every)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    prober = threading.Thread(target=probe)
    started = time.monotonic()
    prober.start()
    for thread in threads:
        thread.start()
    if during:
        during()
    for thread in threads:
        thread.join()
    load.seconds = time.monotonic() - started
    done.set()
    prober.join()
    return load


def summary(load: Load) -> dict[str, float]:
    return {
        "lookups": len(load.answers),
        "lookups_per_second": round(load.per_second, 1),
        "client_p50_ms": round(percentile([a.seconds for a in load.answers], 0.5) * 1000),
        "client_p95_ms": round(percentile([a.seconds for a in load.answers], 0.95) * 1000),
        "client_max_ms": round(max((a.seconds for a in load.answers), default=0) * 1000),
        "probe_p99_ms": round(percentile([p.seconds for p in load.probes], 0.99) * 1000, 1),
        "probe_max_ms": round(max((p.seconds for p in load.probes), default=0) * 1000, 1),
    }
