"""The portal's gunicorn worker, and the master's part in /metrics. Loaded by
gunicorn.conf.py in the master, so nothing here imports Django or prometheus-client at
the top: the master must not decide the metrics' storage before the workers fork.

**Probes never queue.** gunicorn's gthread worker hands every connection to its pool of
threads. When Solar Proof hangs, every thread can be waiting on it, and a probe of
/healthz waits in the queue behind them (4.0 s measured, issue 22): a load balancer or
orchestrator with a 1 s probe timeout would take the portal out of service, or restart
it, because a neighbour is down. The bulkhead keeps threads free of Solar Proof, but a
burst of lookups, each answered quickly, still fills the queue ahead of a probe.
``ProbeFirstWorker`` therefore looks at the first bytes of each request in the worker's
own event loop, before the thread pool: ``GET /healthz`` or ``HEAD /healthz`` is answered
there and then ("ok", Connection: close), everything else goes to the threads as
before. /healthz means "the process is alive", and an event loop that answers is that;
it touches nothing, as Django's view does not. /readyz still goes through Django (it
asks the database), so it keeps its meaning.
"""

from __future__ import annotations

import errno
import os
import selectors
import shutil
import socket
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

_PROBES = (b"GET /healthz HTTP/1.", b"HEAD /healthz HTTP/1.")
_END_OF_HEADERS = b"\r\n\r\n"
_MOST_A_PROBE_SENDS = 8192


def _probe_answer(method: bytes) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Length: 2\r\n"
        b"Cache-Control: no-store\r\n"
        b"X-Content-Type-Options: nosniff\r\n"
        b"Connection: close\r\n\r\n"
    )
    return head if method == b"HEAD" else head + b"ok"


class ProbeFirstWorker(ThreadWorker):
    def init_process(self) -> None:
        # The bulkhead's default (settings.SOLARPROOF_MAX_CONCURRENT) follows the threads
        # this worker really runs, however gunicorn.conf.py worked them out.
        os.environ["GUNICORN_THREADS"] = str(self.cfg.threads)
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        """As gthread's, except that the connection waits on the event loop for its first
        bytes (as a deferred one does), not in the thread pool."""
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client, address, listener.getsockname())
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))

    def on_pending_socket_readable(self, conn: Any, client: socket.socket) -> None:
        if self._answered_probe(conn, client, self.pending_conns):
            return
        super().on_pending_socket_readable(conn, client)

    def on_client_socket_readable(self, conn: Any, client: socket.socket) -> None:
        if self._answered_probe(conn, client, self.keepalived_conns):
            return
        super().on_client_socket_readable(conn, client)

    def _answered_probe(self, conn: Any, client: socket.socket, waiting: Any) -> bool:
        try:
            first = client.recv(_MOST_A_PROBE_SENDS, socket.MSG_PEEK)
        except OSError:
            return False  # the thread will find out, as it would have
        if not first.startswith(_PROBES) or _END_OF_HEADERS not in first:
            return False
        self.poller.unregister(client)
        waiting.remove(conn)
        self.nr_conns -= 1
        try:
            client.recv(first.index(_END_OF_HEADERS) + len(_END_OF_HEADERS))
            client.settimeout(0.5)
            client.sendall(_probe_answer(first.split(b" ", 1)[0]))
        except OSError:
            pass
        finally:
            conn.close()
        return True


# --- /metrics: every worker's counts in one directory, cleared when the master starts ---


def prepare_metrics_dir() -> None:
    """PROMETHEUS_MULTIPROC_DIR for the workers: the operator's, or a fresh temporary
    directory. Runs when gunicorn reads its config, before any worker forks."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="portal-metrics-")


def on_starting(server: Any) -> None:
    """Counts left by a previous run of the master would be added to this one's."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A worker that stopped no longer counts in ``live`` gauges (portal_dependency_up)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if Path(directory).name.startswith("portal-metrics-"):
        shutil.rmtree(directory, ignore_errors=True)
