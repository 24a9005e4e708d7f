"""4. The audit write on its own: the chained append against a plain INSERT of the same row,
at 1, 8 and 32 concurrent writers, how long each append holds the chain's lock and what it
holds it for, and the chain verified after.

    python -m bench.cases.audit_writes [--smoke] [--no-migrate]   # this case alone, on DATABASE_URL

Each writer is a thread with its own PostgreSQL connection (psycopg, server-side binding and
prepared after five calls, as the portal's settings) that sends exactly the portal's
statement (``customers.audit.log._APPEND_SQL``, autocommit: one round trip, committed when
it returns) as fast as it can for a fixed time: one append per transaction, the unit the
portal's grouping (``customers/audit/group_commit.py``) puts several of in one. The anchor is the same row (same columns and
values, a made-up hash) INSERTed into a plain table with only a primary key, autocommit too.

How long the lock is held (the method):
- The lock cycle: the function takes the time from the database clock (``created_at``) just
  after it is granted the lock and has read the head, and the lock is released at the end of
  COMMIT. With writers queueing for the lock, the next one is granted it as the previous one
  commits, so the gap between consecutive ``created_at`` of the rows one run wrote is one
  append's hold (from the grant to COMMIT's end) plus the hand-over to the next waiter: the
  time the chain is serialised per append, and the chain's rate is at most 1 / that gap. At
  one writer the gap also holds the writer's round trip (no one is waiting) and says nothing
  about the hold; the split below does.
- What the holder is doing: every 2 ms a separate connection samples ``pg_stat_activity`` of
  the backend that holds the chain's advisory lock (``pg_locks``): the share of samples on
  the WAL flush of COMMIT (``IO/WALSync``, ``LWLock/WALWrite``) against running (no wait
  event) and anything else. Sampling costs the machine a little, so the rates above come
  from runs without it.
- Statement against COMMIT: at one writer the same call inside BEGIN ... COMMIT, each
  timed on the client (the lock is then held over one more round trip, so this is done
  with one writer only); for the plain INSERT at every concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.cases import throughput
from bench.common import PROJECT, Bench, Plan, Row, median, percentile

NAME = "audit"
WRITERS = (1, 8, 32)
LOOKUP_LOCK_KEY = 0x50_0F_A0_D1  # customers.audit.heads.LOOKUP_LOCK_KEY
PLAIN_TABLE = "bench_plain_event"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
FLUSH_WAITS = {("IO", "WALSync"), ("IO", "WALWrite"), ("LWLock", "WALWrite"), ("IO", "WALInitSync")}


def _seconds(plan: Plan) -> float:
    return 0.4 if plan.smoke else 3.0


def _runs(plan: Plan) -> int:
    return 1 if plan.smoke else plan.runs


def _conninfo() -> str:
    from django.db import connection

    # Where and who only: the writers' own connections, outside any pool Django may keep.
    params = connection.get_connection_params()
    wanted = ("dbname", "user", "password", "host", "port", "sslmode")
    return " ".join(f"{key}='{params[key]}'" for key in wanted if params.get(key) not in (None, ""))


def _connect(conninfo: str, *, autocommit: bool = True) -> Any:
    import psycopg

    return psycopg.connect(conninfo, autocommit=autocommit, prepare_threshold=5)


def _row(user: Any, writer: int, n: int) -> dict[str, Any]:
    """A lookup event as the portal writes one (the chain fields aside)."""
    return {
        "user_id": user.pk,
        "username": user.username,
        "project_id": PROJECT + n % 1000,
        "outcome": "found",
        "customer_id": 79298 + n % 1000,
        "channel": "web",
        "ip": "203.0.113.7",
        "user_agent": USER_AGENT,
        "request_id": f"{writer:02d}{n:030x}",
        "duration_ms": 40 + n % 60,
        "cache_hit": False,
        "auth_method": "password",
        "reason": None,
        "role": "Sales",
    }


def _append_call(columns: tuple[str, ...], sql: str):
    def params(row: dict[str, Any]) -> list[Any]:
        return [row[name] for name in columns]

    return _call(sql, params)


def _call(sql: str, params):
    """A writer's call: the statement and its parameters from a row; ``.sql`` and ``.params``
    for the EXPLAIN below."""

    def call(cursor: Any, row: dict[str, Any]) -> None:
        cursor.execute(sql, params(row))
        cursor.fetchone()

    call.sql, call.params = sql, params
    return call


def _insert_call(table: str):
    columns = (
        "sequence, created_at, user_id, username, project_id, outcome, customer_id, channel, ip, user_agent, "
        "request_id, duration_ms, cache_hit, auth_method, reason, role, prev_hash, hash"
    )
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES (%s, clock_timestamp(), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s, %s, %s, %s, %s) RETURNING id"
    )
    fake_hash = "ab" * 32

    def params(row: dict[str, Any]) -> list[Any]:
        return [
            row["n"], row["user_id"], row["username"], row["project_id"], row["outcome"], row["customer_id"],
            row["channel"], row["ip"], row["user_agent"], row["request_id"], row["duration_ms"], row["cache_hit"],
            row["auth_method"], row["reason"], row["role"], fake_hash, fake_hash,
        ]  # fmt: skip

    return _call(sql, params)


def _in_the_server(conninfo: str, call, user: Any, count: int) -> dict[str, float]:
    """One writer, ``EXPLAIN (ANALYZE, WAL)`` of the very statement (each one writes its row
    and commits): the time the statement takes inside PostgreSQL, without the round trip
    and the COMMIT, and the WAL it writes (bytes and full-page images) before the commit record."""
    times, wal_bytes, fpi = [], [], []
    with _connect(conninfo) as conn, conn.cursor() as cursor:
        for n in range(count + 6):
            cursor.execute(
                "EXPLAIN (ANALYZE, WAL, FORMAT JSON) " + call.sql, call.params({**_row(user, 99, n), "n": n})
            )
            plan = cursor.fetchone()[0][0]
            if n >= 6:  # past the prepare threshold, as the writers
                times.append(plan["Execution Time"])
                wal_bytes.append(plan["Plan"]["WAL Bytes"])
                fpi.append(plan["Plan"]["WAL FPI"])
    return {"server_ms": median(times), "wal_bytes": median(wal_bytes), "wal_fpi_per_100": 100 * sum(fpi) / len(fpi)}


def _after_the_head(conninfo: str, user: Any, count: int) -> float:
    """One writer: the statement's time under the lock after the head read, from the row's
    ``created_at`` (taken just after it) to the end of the function (``clock_timestamp()``
    in the select list is evaluated once the function has returned its row): the time, the
    hash and the INSERT. The COMMIT after it (the deferred foreign-key check and the flush)
    is in the statement / COMMIT split."""
    from customers.audit import log as audit_log

    sql = audit_log._APPEND_SQL.replace(
        "SELECT *", "SELECT extract(epoch FROM clock_timestamp() - o_created_at) * 1000"
    )
    times = []
    with _connect(conninfo) as conn, conn.cursor() as cursor:
        for n in range(count + 6):
            row = _row(user, 98, n)
            cursor.execute(sql, [row[name] for name in audit_log._COLUMNS])
            if n >= 6:
                times.append(float(cursor.fetchone()[0]))
    return median(times)


def _create_plain_table(conninfo: str) -> None:
    """The anchor: the lookup event's columns, no chain, no index but the primary key."""
    with _connect(conninfo) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {PLAIN_TABLE}")
        conn.execute(
            f"CREATE TABLE {PLAIN_TABLE} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            "sequence bigint NOT NULL, created_at timestamptz NOT NULL, user_id integer NOT NULL, "
            "username varchar(150) NOT NULL, project_id bigint NOT NULL, outcome varchar(32) NOT NULL, "
            "customer_id bigint, channel varchar(8) NOT NULL, ip inet, user_agent varchar(300) NOT NULL, "
            "request_id varchar(64) NOT NULL, duration_ms integer NOT NULL, cache_hit boolean NOT NULL, "
            "auth_method varchar(8), reason varchar(200), role varchar(64), prev_hash varchar(64) NOT NULL, "
            "hash varchar(64) NOT NULL)"
        )


def _drive(conninfo: str, writers: int, seconds: float, call, user: Any, *, split: bool = False) -> dict[str, Any]:
    """``writers`` threads calling ``call`` for ``seconds``; per-call client times in ms.
    With ``split``, each call is BEGIN, the statement, COMMIT, the last two timed apart."""
    latencies: list[float] = []
    statements: list[float] = []
    commits: list[float] = []
    lock = threading.Lock()
    ready = threading.Barrier(writers + 1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        mine, mine_statement, mine_commit = [], [], []
        try:
            with _connect(conninfo, autocommit=not split) as conn, conn.cursor() as cursor:
                n = 0
                for _ in range(6):  # warm up: past psycopg's prepare threshold
                    n += 1
                    call(cursor, {**_row(user, index, n), "n": n})
                    if split:
                        conn.commit()
                ready.wait()
                while not stop.is_set():
                    n += 1
                    row = {**_row(user, index, n), "n": n}
                    started = time.perf_counter()
                    call(cursor, row)
                    if split:
                        executed = time.perf_counter()
                        conn.commit()
                        ended = time.perf_counter()
                        mine_statement.append((executed - started) * 1000)
                        mine_commit.append((ended - executed) * 1000)
                    else:
                        ended = time.perf_counter()
                    mine.append((ended - started) * 1000)
        except BaseException as error:  # reported after the run, never swallowed
            errors.append(error)
            ready.abort()
        with lock:
            latencies.extend(mine)
            statements.extend(mine_statement)
            commits.extend(mine_commit)

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(writers)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:  # a writer failed: its error is raised below
        stop.set()
    started_at = time.perf_counter()
    if not stop.is_set():
        time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started_at
    if errors:
        raise errors[0]
    result = {
        "writes": len(latencies),
        "per_s": len(latencies) / elapsed,
        "median_ms": median(latencies),
        "p95_ms": percentile(latencies, 0.95),
    }
    if split:
        result |= {"statement_ms": median(statements), "commit_ms": median(commits)}
    return result


def _lock_cycle_ms(conninfo: str, after_sequence: int) -> float:
    """Median gap between consecutive ``created_at`` of the rows written after ``after_sequence``."""
    with _connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM created_at - lag(created_at) OVER (ORDER BY sequence)) * 1000 "
            "FROM customers_lookupevent WHERE sequence > %s ORDER BY sequence",
            [after_sequence],
        ).fetchall()
    gaps = [row[0] for row in rows[1:] if row[0] is not None]
    return float(statistics.median(gaps)) if gaps else float("nan")


def _head(conninfo: str) -> int:
    with _connect(conninfo) as conn:
        return conn.execute("SELECT coalesce(max(sequence), 0) FROM customers_lookupevent").fetchone()[0]


def _sample_holder(conninfo: str, stop: threading.Event, samples: list[tuple[str, str, str]]) -> None:
    """What the backend holding the chain's lock is doing, every 2 ms."""
    query = (
        "SELECT coalesce(a.wait_event_type, ''), coalesce(a.wait_event, ''), coalesce(a.state, '') "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1"
    )
    with _connect(conninfo) as conn, conn.cursor() as cursor:
        while not stop.is_set():
            cursor.execute(query, [LOOKUP_LOCK_KEY])
            samples.extend(cursor.fetchall())
            time.sleep(0.002)


def _holder_shares(conninfo: str, writers: int, seconds: float, call, user: Any) -> dict[str, float]:
    samples: list[tuple[str, str, str]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_holder, args=(conninfo, stop, samples))
    sampler.start()
    try:
        _drive(conninfo, writers, seconds, call, user)
    finally:
        stop.set()
        sampler.join()
    # pg_locks and pg_stat_activity are two snapshots: a sample that finds the holder already
    # back with its client (ClientRead) or queueing for its next append has read a holder
    # that has moved on, and is counted apart.
    stale = [s for s in samples if s[:2] in {("Client", "ClientRead"), ("Lock", "advisory")} or s[2] != "active"]
    held = [s for s in samples if s not in stale]
    total = len(held) or 1
    flush = sum(1 for kind, event, _ in held if (kind, event) in FLUSH_WAITS)
    running = sum(1 for kind, _, _ in held if not kind)
    return {
        "samples": len(held),
        "stale": len(stale),
        "flush": flush / total,
        "running": running / total,
        "other": (len(held) - flush - running) / total,
        "other_events": sorted({f"{k}/{e}" for k, e, _ in held if (k, e) not in FLUSH_WAITS and k}),
    }


def measure(plan: Plan) -> dict[str, Any]:
    """Every figure of this case, on the database Django is configured for (PostgreSQL)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from customers.audit import log as audit_log
    from customers.audit import verify

    if connection.vendor != "postgresql":
        raise SystemExit("bench audit: needs PostgreSQL (DATABASE_URL)")
    user, _ = get_user_model().objects.get_or_create(username="bench.audit")
    conninfo = _conninfo()
    _create_plain_table(conninfo)
    append = _append_call(audit_log._COLUMNS, audit_log._APPEND_SQL)
    insert = _insert_call(PLAIN_TABLE)
    seconds, runs = _seconds(plan), _runs(plan)
    figures: dict[str, Any] = {"seconds": seconds, "runs": runs, "writers": list(WRITERS), "append": {}, "insert": {}}
    for writers in WRITERS:
        appends, inserts = [], []
        for _ in range(runs):  # alternated, so a change in the machine's load falls on both
            head = _head(conninfo)
            appends.append(
                _drive(conninfo, writers, seconds, append, user) | {"lock_cycle_ms": _lock_cycle_ms(conninfo, head)}
            )
            inserts.append(
                _drive(conninfo, writers, seconds, insert, user, split=True)
                | _drive(conninfo, writers, seconds, insert, user)
            )
        figures["append"][writers] = _medians(appends)
        figures["insert"][writers] = _medians(inserts)
    figures["append"][1] |= {
        f"split_{key}": value
        for key, value in _medians(
            [_drive(conninfo, 1, seconds, append, user, split=True) for _ in range(runs)]
        ).items()
    }
    figures["holder"] = _holder_shares(conninfo, max(WRITERS), seconds, append, user)
    explained = 30 if plan.smoke else 300
    figures["server"] = {
        "append": _in_the_server(conninfo, append, user, explained)
        | {"after_head_ms": _after_the_head(conninfo, user, explained)},
        "insert": _in_the_server(conninfo, insert, user, explained),
    }
    connection.close()
    verification = verify.verify_chain()
    figures["chain"] = str(verification)
    figures["chain_ok"] = verification.ok
    return figures


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]} | {
        "range_per_s": (min(run["per_s"] for run in runs), max(run["per_s"] for run in runs))
    }


def run(bench: Bench) -> dict:
    return measure(bench.plan)


def _ratio(results: dict, writers: int) -> float:
    a, i = results["append"][_key(results, writers)], results["insert"][_key(results, writers)]
    return a["per_s"] / i["per_s"] if i["per_s"] else float("nan")


def _key(results: dict, writers: int) -> Any:
    # RESULTS.json keeps the writer counts as strings; a run in hand, as ints.
    return writers if writers in results["append"] else str(writers)


def summary(results: dict) -> list[Row]:
    a, t = results[NAME], results[throughput.NAME]
    one, many = a["append"][_key(a, 1)], a["append"][_key(a, max(WRITERS))]
    return [
        Row(4, "audit append, single writer (PostgreSQL, hash chain; plain INSERT of the same row)",
            f"{one['median_ms']:.2f} ms median (plain {a['insert'][_key(a, 1)]['median_ms']:.2f} ms); lookups "
            f"{median(t['portal_rps']):.0f}/s with, {median(t['no_audit_rps']):.0f}/s without",
            "< 2 ms median", one["median_ms"] < 2),
        Row(4, f"audit append, {max(WRITERS)} concurrent writers: chain lock per append; writes/s vs plain INSERT",
            f"{many['lock_cycle_ms']:.2f} ms; {many['per_s']:.0f}/s = {_ratio(a, max(WRITERS)):.2f} of plain; {a['chain']}",
            "chain never forks", a["chain_ok"]),
    ]  # fmt: skip


def details(results: dict, plan: Plan) -> list[str]:
    a = results[NAME]
    lines = [
        "### 4. Audit write cost",
        "",
        "The portal's append statement (`customers.audit.log._APPEND_SQL`: a database function takes the chain's "
        "advisory lock, reads the head, takes the time, hashes and inserts), one per transaction (autocommit, so "
        "committed when it returns; the portal's grouping of a process's appends into one transaction, "
        "`customers/audit/group_commit.py`, is not in these figures) against a plain `INSERT` of the same row into a table with only a primary key, from 1, 8 and "
        f"{max(WRITERS)} threads with a connection each, {a['seconds']:g} s per run, {a['runs']} runs alternated, "
        "medians (writes/s: median and range). *Lock cycle*: the median gap between consecutive rows' "
        "database-clock times, taken under the lock: with writers queueing, one append's hold from the grant to "
        "the end of its COMMIT plus the hand-over to the next (at one writer it holds the writer's round trip "
        "too). *Statement / COMMIT*: the same call inside BEGIN ... COMMIT, timed apart on the client "
        "(`bench/cases/audit_writes.py` says how each is measured).",
        "",
        "| writers | append: median / p95 ms | append writes/s | lock cycle ms | plain INSERT: median / p95 ms "
        "| plain writes/s | plain statement / COMMIT ms | append ÷ plain writes/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for writers in WRITERS:
        ap, ins = a["append"][_key(a, writers)], a["insert"][_key(a, writers)]
        lines.append(
            f"| {writers} | {ap['median_ms']:.2f} / {ap['p95_ms']:.2f} | {ap['per_s']:.0f} "
            f"({ap['range_per_s'][0]:.0f}–{ap['range_per_s'][1]:.0f}) | {ap['lock_cycle_ms']:.2f} "
            f"| {ins['median_ms']:.2f} / {ins['p95_ms']:.2f} | {ins['per_s']:.0f} "
            f"({ins['range_per_s'][0]:.0f}–{ins['range_per_s'][1]:.0f}) "
            f"| {ins['statement_ms']:.2f} / {ins['commit_ms']:.2f} | {_ratio(a, writers):.2f} |"
        )
    one, holder, server = a["append"][_key(a, 1)], a["holder"], a["server"]
    lines += [
        "",
        f"One writer, the append inside BEGIN ... COMMIT: statement {one['split_statement_ms']:.2f} ms, "
        f"COMMIT {one['split_commit_ms']:.2f} ms (median). Inside PostgreSQL (`EXPLAIN (ANALYZE, WAL)` of the "
        f"same statement, one writer, median): the append {server['append']['server_ms']:.3f} ms (of which "
        f"{server['append'].get('after_head_ms', float('nan')):.3f} ms under the lock after the head read: the "
        "time, the hash and the INSERT) and "
        f"{server['append']['wal_bytes']:.0f} bytes of WAL ({server['append']['wal_fpi_per_100']:.0f} full-page "
        f"images per 100 appends), the plain INSERT {server['insert']['server_ms']:.3f} ms and "
        f"{server['insert']['wal_bytes']:.0f} bytes ({server['insert']['wal_fpi_per_100']:.0f} per 100). What the backend holding the chain's lock was doing at "
        f"{max(WRITERS)} writers ({holder['samples']} samples of `pg_stat_activity`, one every 2 ms, and "
        f"{holder.get('stale', 0)} that found it done already): flushing WAL "
        f"for its COMMIT {holder['flush']:.0%}, running {holder['running']:.0%}, other {holder['other']:.0%}"
        + (f" ({', '.join(holder['other_events'])})" if holder["other_events"] else "")
        + f". Afterwards: {a['chain']}.",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a fraction of a second per run, one run")
    parser.add_argument("--no-migrate", action="store_true", help="measure the database as it is migrated now")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "solarproof_portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from bench.common import FULL, SMOKE, load_average

    if not args.no_migrate:
        call_command("migrate", verbosity=0)
    plan = SMOKE if args.smoke else FULL
    load = load_average()
    results = {NAME: measure(plan)}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    print("\n".join(details(results, plan)))
    print(f"load average at the start {load}, at the end {load_average()}")


if __name__ == "__main__":
    main()
