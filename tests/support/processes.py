"""Real processes for tests: gunicorn with the production config, a Redis of the test's
own, a TCP proxy that can be cut. Loopback only; each stops itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import requests
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def closed_port_url(path: str = "/apidata.php") -> str:
    """A loopback URL on a port nothing listens on: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}{path}"


def wait_until_up(url: str, *, timeout: float = 30, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            requests.get(url, timeout=1, headers={"X-Forwarded-Proto": "https"})
            return
        except (requests.ConnectionError, requests.Timeout):
            # Refused before gunicorn listens; a timeout while its workers are still booting.
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of a production instance pointing at this test run's database."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("postgresql"):
        url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    else:
        url = f"sqlite:///{database['NAME']}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "production-like-test-key-" + "x" * 30,
        "AUDIT_SIGNING_KEY": "1gjkCzBnqJpov274HgdLdd7n43pUidgj2Fri1oBSTMo=",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": url,
        "SOLARPROOF_API_URL": settings.SOLARPROOF_API_URL,
        "SOLARPROOF_API_KEY": settings.SOLARPROOF_API_KEY,
        "SOLARPROOF_TIMEOUT": "2",
        "BIND_HOST": "127.0.0.1",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "4",
        "DATABASE_CONN_MAX_AGE": "0",
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(overrides)
    return env


@contextmanager
def gunicorn(env: dict[str, str], *, python: str = sys.executable, log: Path | None = None) -> Iterator[str]:
    """gunicorn with the project's own config; yields its base URL."""
    port = free_port()
    env = {**env, "PORT": str(port)}
    gunicorn_bin = str(Path(python).parent / "gunicorn")
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(  # noqa: S603
        [gunicorn_bin, "--config", "solarproof_portal/gunicorn.conf.py", "solarproof_portal.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/healthz", process=process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        if log:
            out.close()


@contextmanager
def make_run_portal(database: Path, *, log: Path) -> Iterator[str]:
    """The portal as `make run` serves it: the Makefile's three commands with the `.env`
    it writes (DJANGO_DEBUG=true, nothing else), so demo mode with the in-process sandbox
    and Django's development server. Two differences only: a SQLite file of the test's own
    instead of the checkout's db.sqlite3, and no autoreloader (one process to stop).
    Yields the base URL; the server's log lines go to ``log``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{database}",
    }
    for command in (["migrate", "--noinput"], ["seed_demo"]):
        subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, timeout=120, capture_output=True
        )
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url + "/healthz", process=process)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def healthcheck_command() -> list[str]:
    """The Dockerfile's HEALTHCHECK command, exactly as written there."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    return json.loads(re.search(r"^HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])$", dockerfile, re.M)[1])


@contextmanager
def container_start(env: dict[str, str], *, venv: Path, log: Path, timeout: float = 120) -> Iterator[str]:
    """The container's start step (deploy/container-steps.sh start, as its CMD runs it) with
    ``venv`` as the image's /opt/venv on PATH; yields its base URL once the Dockerfile's own
    HEALTHCHECK command passes, and fails with the step's output if it never does."""
    port = str(free_port())
    env = {**env, "PORT": port, "VENV": str(venv), "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["sh", "deploy/container-steps.sh", "start"],  # noqa: S607 - sh from PATH, as the image runs it
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline, check = time.monotonic() + timeout, healthcheck_command()
            while True:
                healthy = subprocess.run(check, env=env, capture_output=True, timeout=10)  # noqa: S603
                if healthy.returncode == 0:
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the HEALTHCHECK never passed:\n{log.read_text()[-4000:]}")
                time.sleep(0.5)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


class RedisServer:
    """A Redis of the test's own on another port, which the test may stop and restart."""

    def __init__(self, *, password: str = "") -> None:
        self.port = free_port()
        self.password = password
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{f':{self.password}@' if self.password else ''}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(  # noqa: S603
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + (["--requirepass", self.password] if self.password else []),
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class TcpProxy:
    """Forwards a local port to a target; cut() drops every connection and refuses new
    ones until restore(). Stands in for a network failure to PostgreSQL."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> TcpProxy:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener:
            # shutdown() first: close() alone leaves a thread blocked in accept() listening.
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self.lock:
            for conn in self._connections:
                with suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._connections.clear()

    def restore(self) -> None:
        self.start()


class BlackHole:
    """A TCP server that accepts every connection and never answers: a hung neighbour
    (a Redis or Solar Proof stuck, or a firewall that black-holes replies). Counts the
    connections it accepted, so a test can tell whether anything still tried it."""

    def __init__(self, port: int = 0) -> None:
        self._listener = socket.create_server(("127.0.0.1", port), backlog=256)
        self.port = self._listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/apidata.php"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._held.append(conn)

    def stop(self) -> None:
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for conn in self._held:
                conn.close()
            self._held.clear()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def collect_static(root: Path) -> Path:
    """Hashed, compressed static files as production serves them, into ``root``."""
    env = {**production_env(), "DJANGO_STATIC_ROOT": str(root), "SOLARPROOF_DEMO": "true"}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    return root
