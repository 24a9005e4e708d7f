"""A stand-in for Solar Proof's API that speaks the same contract over real HTTP.

Solar Proof itself is never reachable from our machines, so the demo (``make run``),
the tests and the benchmarks all talk to this instead. It serves synthetic Australian
customers and one project for every error the contract documents, plus the quirks
of the real endpoint's history (errors with 200, odd content types, legacy codes).
The catalogue of project IDs is in ``customers/upstream/sandbox_data.py`` and the README.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from customers.upstream import sandbox_data

DEMO_API_KEY = "sandbox-demo-key"
PATH = "/apidata.php"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API behind a web server
    # Headers and body go out in separate writes; without this, Nagle's algorithm and
    # the client's delayed ACK add ~40 ms to every kept-alive answer.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer

    def do_GET(self) -> None:
        with self.server.answering():
            self._answer()

    def _answer(self) -> None:
        url = urlsplit(self.path)
        if self.server.latency:
            time.sleep(self.server.latency)
        if url.path != PATH:
            self._send(404, b"<html><body><h1>Not Found</h1></body></html>", "text/html")
            return
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        self.server.count(query.get("project_id", ""))
        answer = sandbox_data.answer(query, api_key=self.server.api_key)
        if answer.delay:
            time.sleep(answer.delay)
        self._send(answer.status, answer.body, answer.content_type)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # The request line holds the API key: the sandbox logs nothing.
        pass


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, *, latency: float, api_key: str) -> None:
        super().__init__((host, port), _Handler)
        self.latency = latency
        self.api_key = api_key
        self._thread: threading.Thread | None = None
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._in_flight = 0
        self.most_at_once = 0  # the most requests it was answering at one time (tests read it)

    @contextmanager
    def answering(self) -> Iterator[None]:
        with self._calls_lock:
            self._in_flight += 1
            self.most_at_once = max(self.most_at_once, self._in_flight)
        try:
            yield
        finally:
            with self._calls_lock:
                self._in_flight -= 1

    def count(self, project_id: str) -> None:
        with self._calls_lock:
            self._calls[project_id] += 1

    def calls(self, project_id: int | str) -> int:
        """How many times the sandbox was asked for ``project_id`` (tests assert on it)."""
        with self._calls_lock:
            return self._calls[str(project_id)]

    def total_calls(self) -> int:
        with self._calls_lock:
            return sum(self._calls.values())

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def start(self) -> SandboxHTTPServer:
        self._thread = threading.Thread(target=self.serve_forever, name="solarproof-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def serve(
    *, host: str = "127.0.0.1", port: int = 0, latency_ms: int = 0, api_key: str = DEMO_API_KEY
) -> SandboxHTTPServer:
    """Start a sandbox on a background thread; ``port=0`` picks a free one."""
    return SandboxHTTPServer(host, port, latency=latency_ms / 1000, api_key=api_key).start()


_demo: SandboxHTTPServer | None = None
_demo_lock = threading.Lock()


def demo_sandbox() -> SandboxHTTPServer:
    """The in-process sandbox behind demo mode, started on first use in each process."""
    global _demo
    with _demo_lock:
        if _demo is None:
            _demo = serve()
        return _demo
