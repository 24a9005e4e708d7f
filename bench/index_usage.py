"""Which of the lookup table's indexes the portal's own queries use, on a filled table.

    DATABASE_URL=postgres://.../scratch python bench/index_usage.py [--rows 1000000]

Fills the lookup table of the (scratch) database it is given with ``--rows`` events spread
as bench/cases/history.py spreads them (made-up hashes: plans do not read them), runs the
history pages (first, per project, per user over 30 days, per outcome, per day), the CSV
export's snapshot, the customer access report and its report.json, the recent lookups of
the search page, the chain's verifier and the prune's own reads, captures every SQL
statement they send that reads the lookup table, and prints the indexes each one's plan
(``EXPLAIN``) uses, with the foreign key's checks when a user is deleted. An index no plan
names costs every append an index insert under the chain's lock for nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def fill(rows: int, users: int = 200, projects: int = 50_000) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    staff = [get_user_model().objects.get_or_create(username=f"staff{n:03d}")[0] for n in range(users)]
    start = datetime.now(UTC) - timedelta(days=365)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE customers_lookupevent DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM customers_lookupevent")
        cursor.execute("ALTER TABLE customers_lookupevent ENABLE TRIGGER USER")
        cursor.execute(
            "INSERT INTO customers_lookupevent (sequence, created_at, user_id, username, project_id, outcome, "
            "customer_id, channel, ip, user_agent, request_id, duration_ms, cache_hit, prev_hash, hash) "
            "SELECT i + 1, %s::timestamptz + (i * interval '365 days' / %s), (%s::int[])[1 + (i * 7919) %% %s], "
            "(%s::text[])[1 + (i * 7919) %% %s], 1000 + (i * 104729) %% %s, "
            "CASE WHEN i %% 10 = 0 THEN 'project_not_found' ELSE 'found' END, 70000 + i %% %s, 'web', "
            "'10.20.30.40', 'bench', md5(i::text), 40 + i %% 60, i %% 3 = 0, repeat('a', 64), repeat('b', 64) "
            "FROM generate_series(0::bigint, %s - 1) i",
            [start, rows, [u.pk for u in staff], users, [u.username for u in staff], users, projects, projects, rows],
        )
        cursor.execute("ANALYZE customers_lookupevent")


def captured() -> list[str]:
    """Every statement reading the lookup table that the pages, the export, the report, the
    verifier and the prune's reads send, with their values bound in."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.database import session_cookie
    from customers.audit import prune
    from customers.history import export, queries

    admin = Client()
    admin.cookies[settings.SESSION_COOKIE_NAME] = session_cookie("bench.admin", "Admins")
    busy_project = 1000 + (5 * 104729) % 50_000
    month_ago = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    day = (datetime.now(UTC) - timedelta(days=100)).date().isoformat()
    user = get_user_model().objects.get(username="staff007")
    with CaptureQueriesContext(connection) as context:
        for url in (
            "/history/",
            f"/history/?project={busy_project}",
            f"/history/?user=staff007&from={month_ago}",
            "/history/?outcome=project_not_found",
            f"/history/?from={day}&to={day}",
            "/history/customers/70005/",
            "/history/customers/70005/report.json",
        ):
            assert admin.get(url).status_code == 200, url
        events, _ = export.export_snapshot(queries.Filters())
        str(events.query)
        list(events[:10])
        queries.recent_lookups(user.pk, count=10)
        list(prune.LookupEvent.objects.order_by("sequence").values_list("sequence", flat=True)[:1])
        prune._last_prunable(datetime.now(UTC) - timedelta(days=180))
    statements = [q["sql"] for q in context.captured_queries if "customers_lookupevent" in q["sql"]]
    # The verifier's read (a server-side cursor over every row: its statement as Django builds it).
    names = ", ".join(f'"customers_lookupevent"."{name}"' for name in ("sequence", "hash"))
    statements.append(f'SELECT {names} FROM "customers_lookupevent" ORDER BY "customers_lookupevent"."sequence" ASC')
    # PostgreSQL's own checks of the foreign key when a user is deleted (ON DELETE NO ACTION).
    statements.append(f'SELECT 1 FROM ONLY "customers_lookupevent" x WHERE "user_id" = {user.pk} FOR KEY SHARE OF x')
    # Django's PROTECT collector, before it.
    statements.append(
        f'SELECT "customers_lookupevent"."id" FROM "customers_lookupevent" WHERE "user_id" IN ({user.pk})'
    )
    return statements


def indexes_used(statement: str) -> tuple[list[str], float]:
    """The indexes the statement's plan scans, and its execution time (ms, the best of three
    ``EXPLAIN ANALYZE``; a locking read's locks are rolled back with it)."""
    from django.db import connection, transaction

    times = []
    for _ in range(3):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE) " + statement)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            transaction.set_rollback(True)
        times.append(float(re.search(r"Execution Time: ([\d.]+) ms", plan)[1]))
    names = re.findall(r"(?:Index|Index Only|Bitmap Index) Scan(?: Backward)? (?:using|on) (\S+)", plan)
    return sorted(set(names)), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-fill", action="store_true", help="the table is filled already")
    args = parser.parse_args()
    from bench.common import env_base

    static_root = tempfile.mkdtemp()
    # The benchmark's environment (bench/database.py), on the database given here.
    database, redis = os.environ["DATABASE_URL"], os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ.update(env_base(DJANGO_STATIC_ROOT=static_root, SOLARPROOF_DEMO="true"))
    os.environ.update(DATABASE_URL=database, REDIS_URL=redis, DJANGO_SETTINGS_MODULE="solarproof_portal.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("collectstatic", interactive=False, verbosity=0)

    if connection.vendor != "postgresql":
        sys.exit("index_usage: needs a PostgreSQL DATABASE_URL (a scratch database: the lookup table is refilled)")
    # Values bound on the client, so each captured statement can be EXPLAINed as it ran.
    connection.settings_dict["OPTIONS"]["server_side_binding"] = False
    connection.close()
    if not args.no_fill:
        fill(args.rows)
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'customers_lookupevent' ORDER BY indexname")
        existing = [row[0] for row in cursor.fetchall()]
    used: dict[str, int] = dict.fromkeys(existing, 0)
    for statement in dict.fromkeys(captured()):
        names, ms = indexes_used(statement)
        for name in names:
            used[name] = used.get(name, 0) + 1
        print(f"{ms:9.2f} ms  {', '.join(names) or 'no index (sequential scan)'}\n    {statement[:300]}")
    print("\nindex: plans that use it")
    for name, count in used.items():
        print(f"{name}: {count}")


if __name__ == "__main__":
    main()
