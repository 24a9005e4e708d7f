"""Prints, as JSON, the workers, threads and database pool the portal starts with under
the environment it is run in, read the way gunicorn (solarproof_portal/gunicorn.conf.py)
and Django (the settings) read them. bench/common.py's ``server_config`` runs it with a
case's environment, so the report states the configuration each figure was measured at."""

import json
import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    sync = os.environ.get("WORKER_CLASS") == "sync"
    conf = runpy.run_path(str(ROOT / "solarproof_portal" / "gunicorn.conf.py"))
    threads = 1 if sync else int(conf["threads"])
    # As the portal's gunicorn worker does before Django loads.
    os.environ["GUNICORN_THREADS"] = str(threads)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "solarproof_portal.settings")
    import django

    django.setup()
    from django.conf import settings

    database = settings.DATABASES["default"]
    pool = database.get("OPTIONS", {}).get("pool")
    if pool is True:  # psycopg_pool's own defaults
        pool = {"min_size": 4, "max_size": None, "timeout": 30}
    print(
        json.dumps(
            {
                "worker_class": "sync" if sync else "gthread",
                "workers": int(conf["workers"]),
                "threads": threads,
                "pool": {key: pool.get(key) for key in ("min_size", "max_size", "timeout")} if pool else None,
                "conn_max_age": database.get("CONN_MAX_AGE"),
                "solarproof_max_concurrent": getattr(settings, "SOLARPROOF_MAX_CONCURRENT", None),
            }
        )
    )


if __name__ == "__main__":
    main()
