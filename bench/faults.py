"""Figures for a neighbour that hangs (issue 22): lookups per second, the client's p95 and
the /healthz probe's p99, with Solar Proof hung (48 lookups at once against 2 workers x 8
threads) and with Redis hung (16 at once), on a PostgreSQL and Redis of its own
(tests/support/faults.py; ports FAULTS_PORT_BASE..+9, default 8220).

    .venv/bin/python bench/faults.py                       # this checkout
    .venv/bin/python bench/faults.py --root /tmp/before    # another checkout, for "before"

Prints one JSON object; bench/FAULTS.md holds the figures and how they were taken.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from tests.support import faults  # noqa: E402


def lookup_paths(client: int, n: int) -> str:
    return f"/projects/{1001 + (client * 7 + n) % 36}/"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=HERE, help="the checkout to run (default: this one)")
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    root = args.root.resolve()
    logs = Path(tempfile.mkdtemp(prefix="faults-bench-"))
    postgres = faults.Postgres().start()
    redis = faults.Redis().start()
    hole = faults.BlackHole()
    results: dict[str, dict] = {}
    try:
        postgres.sql("CREATE DATABASE portal", database="postgres")
        env = faults.portal_env(database_url=postgres.url, REDIS_URL=redis.url, DJANGO_STATIC_ROOT=str(logs / "static"))
        with faults.sandbox(root) as upstream:
            env["SOLARPROOF_API_URL"] = upstream
            cookie = faults.prepare_database(root, env, [("sam.sales", "Sales")])["sam.sales"]
            cases = {
                "healthy": (env, 16),
                "solarproof_hung": ({**env, "SOLARPROOF_API_URL": f"http://127.0.0.1:{hole.port}/apidata.php"}, 48),
                "redis_hung": ({**env, "REDIS_URL": f"redis://127.0.0.1:{hole.port}/0"}, 16),
            }
            for name, (case_env, clients) in cases.items():
                with faults.gunicorn(root, case_env, log=logs / f"{name}.log") as base:
                    faults.warm_up(base, cookie)
                    load = faults.run_load(
                        base, paths=lookup_paths, cookies=[cookie], clients=clients, seconds=args.seconds
                    )
                results[name] = {"clients": clients, **faults.summary(load), "statuses": load.statuses()}
                print(name, results[name], file=sys.stderr)
    finally:
        hole.stop()
        redis.stop()
        postgres.remove()
    print(json.dumps({"root": str(root), "seconds": args.seconds, "logs": str(logs), "results": results}, indent=2))


if __name__ == "__main__":
    main()
