"""gunicorn configuration for the portal (used by the Dockerfile and the benchmarks).

The portal spends most of a lookup waiting on Solar Proof, so each worker process runs
threads (gthread): a waiting request holds a thread, not a whole process. Sized from the
CPUs this process may use (affinity and cgroup quota, solarproof_portal/cpus.py: a 2-CPU
container on a 32-core host starts 4 workers, not 64) and overridable: GUNICORN_WORKERS,
GUNICORN_THREADS, PORT.

Threads default to 32 per worker. A thread that waits on Solar Proof holds no database
connection (it gives it back to the pool first, solarproof_portal/database.py), so
threads are no longer bounded by PostgreSQL's max_connections: connections per app server
are at most workers x DATABASE_POOL_MAX, whatever the threads (sizing: docs/deployment.md).
The benchmark (bench/RESULTS.md, "waiting on a slow upstream": 64 clients, 100 ms
upstream, 2 cores, 2026-11-28 19:59) measured sync workers (2 x CPU) at 30 req/s, 10 % of
the portal's own rate; gthread with 8 threads per worker at 182 req/s (61 %); with 16
threads at 292 req/s (98 %), when each thread still kept a connection. 32 leaves room for
a Solar Proof slower than 100 ms or more clients per app server; the bulkhead
(SOLARPROOF_MAX_CONCURRENT, threads - 2) still keeps two threads per worker free of it.

Worker timeout is the lookup budget (SOLARPROOF_TIMEOUT, with the default the Django
settings use; both from solarproof_portal/budget.py) plus a margin for the audit write and
the page, so a worker is only killed when something is wrong with the portal itself, never
for a slow upstream.
Send HUP for a graceful reload (new workers start, old ones finish their requests).
"""

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from gunicorn.glogging import Logger

# The budget's default and what follows from it are defined once, beside the settings. The
# master does not load Django's settings (they are the workers' business): a bad value is
# refused by the workers' settings, and before that by the start step's check --deploy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from solarproof_portal import gunicorn_worker
from solarproof_portal.budget import solarproof_timeout, worker_timeout
from solarproof_portal.cpus import usable_cpus

# gunicorn reads this module directly; these are its own settings, not Django's.
bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 - in a container
# gthread, with /healthz answered before the thread pool (solarproof_portal/gunicorn_worker.py).
worker_class = "solarproof_portal.gunicorn_worker.ProbeFirstWorker"
workers = int(os.environ.get("GUNICORN_WORKERS", usable_cpus() * 2))
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
timeout = worker_timeout(solarproof_timeout(os.environ))
graceful_timeout = timeout
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
# Requests must not be served by a copy of the app loaded before a reload.
preload_app = False
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No runtime control socket: a read-only container has nowhere to put it, and signals
# (HUP to reload, TERM to stop) are all this deployment uses.
control_socket_disable = True
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")


class JsonLogger(Logger):
    """One JSON object per request on stdout, built with json.dumps so that no value
    (a path, a user agent) can break the line. The query string is left out: staff
    search by project ID, and nothing in a URL needs keeping in an access log."""

    def access(self, resp, req, environ, request_time) -> None:  # type: ignore[no-untyped-def]
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.syslog):
            return
        headers = dict(resp.headers) if isinstance(resp.headers, list) else {}
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "logger": "gunicorn.access",
            "method": req.method,
            "path": req.path,
            "status": resp.status_code if hasattr(resp, "status_code") else str(resp.status).split()[0],
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "remote": environ.get("REMOTE_ADDR"),
            "request_id": headers.get("X-Request-ID"),
            "user_agent": environ.get("HTTP_USER_AGENT", "")[:200],
        }
        self.access_log.info(json.dumps(entry))


logger_class = JsonLogger

# /metrics adds up every worker's counts (prometheus-client's multiprocess mode).
gunicorn_worker.prepare_metrics_dir()
on_starting = gunicorn_worker.on_starting
child_exit = gunicorn_worker.child_exit
on_exit = gunicorn_worker.on_exit
