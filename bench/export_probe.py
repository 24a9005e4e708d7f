"""Stream the whole lookup history as CSV, as /history/export.csv does, and report rows
per second and the process's peak memory as one JSON line. Run by bench/run.py."""

import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "solarproof_portal.settings")

import django

django.setup()

from customers.history import export, queries  # noqa: E402

events, count = export.export_snapshot(queries.Filters())
started = time.perf_counter()
lines = size = 0
for chunk in export.export_csv(events):
    lines += chunk.count("\n")
    size += len(chunk)
seconds = time.perf_counter() - started
print(
    json.dumps(
        {
            "rows": lines - 1,
            "counted": count,
            "bytes": size,
            "seconds": seconds,
            "rows_per_s": (lines - 1) / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )
)
