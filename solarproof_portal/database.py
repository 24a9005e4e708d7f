"""The PostgreSQL connection pool (settings.DATABASE_POOL_*): giving a connection back
while a request waits on something else, and forked processes.

**Released while waiting.** With the pool, a request takes a connection when it first
needs the database and gives it back when it ends (CONN_MAX_AGE 0). A lookup spends most
of its time waiting on Solar Proof, with nothing to ask the database, so
``release_while_waiting`` gives the connection back to the pool just before Solar Proof is
asked, and the audit write takes one again after it. A run sheet's request does the same
while its jobs wait. So does every lookup before its audit append, which may wait for
another thread's group commit (customers/audit/group_commit.py): with every pooled
connection held by threads waiting there, the writing thread could get none. A thread
that waits then holds no connection, and threads per worker can be many more than
connections per worker. Never inside a
transaction (``atomic``), whose work would be lost, and never without the pool, where
closing would only cost a new connection afterwards.

**Forked processes.** A process forked after the pool exists (multiprocessing, a test)
inherits the parent's pool: its locks, its connections' sockets, but none of its
threads, so a ``getconn`` there waits for a connection that no thread will ever make.
The child therefore forgets, at once after the fork, Django's pools and this thread's
connections, and makes its own when it first needs the database. It must not close what
it inherited: closing a libpq connection sends PostgreSQL a Terminate message on the
socket the parent still uses. So the inherited objects are kept referenced for the life
of the child (psycopg leaves a connection made in another process alone when collected;
its pool, marked closed, does not try to stop threads it does not have).
gunicorn forks its workers before they load Django (``preload_app = False``), so they
start with nothing to forget.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

# PostgreSQL's lock_not_available: a statement gave up waiting for a lock after
# DATABASE_LOCK_TIMEOUT (settings), the audit chains' advisory locks among them.
LOCK_NOT_AVAILABLE = "55P03"

# What each forked child inherited: kept, never closed, never collected.
_inherited: list[Any] = []
_registered = False


def pooled(alias: str = DEFAULT_DB_ALIAS) -> bool:
    return bool(connections.settings[alias].get("OPTIONS", {}).get("pool"))


def release_while_waiting(alias: str = DEFAULT_DB_ALIAS) -> bool:
    """Give this thread's connection back to the pool, if it has one, it came from the
    pool and no transaction is open on it. The next query takes one again. True when a
    connection was given back."""
    # A thread that never used the database (a run sheet's job) has nothing to give back,
    # and is not handed a connection object here to find that out.
    if not pooled(alias) or not hasattr(connections._connections, alias):
        return False
    connection = connections[alias]
    if connection.connection is None or connection.in_atomic_block:
        return False
    connection.close()
    return True


def lock_timed_out(exc: BaseException) -> bool:
    """True when ``exc``, or an error it was raised from, is a lock PostgreSQL did not grant
    within DATABASE_LOCK_TIMEOUT: worth its own words in the log, since the database is up
    and another session (one of ours stuck, or someone with our role) holds the lock."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return True
        seen = seen.__cause__
    return False


def failure_in_words(exc: BaseException) -> str:
    """What a log line says of a database failure: its type, and a lock timeout as such.
    Never the error's message, which may quote a row's values."""
    if lock_timed_out(exc):
        return f"{type(exc).__name__}: lock timeout, another session holds the lock; see pg_locks"
    return type(exc).__name__


def forget_inherited_connections() -> None:
    """In a child just forked: drop the pools and connections the parent made, without
    closing them (see the module's docstring)."""
    for connection in connections.all(initialized_only=True):
        _inherited.append(connection)
        del connections[connection.alias]
    postgresql = sys.modules.get("django.db.backends.postgresql.base")
    if postgresql is None:  # never loaded here: no pool to forget
        return
    pools = postgresql.DatabaseWrapper._connection_pools
    for pool in pools.values():
        # Its finaliser would signal worker threads that exist only in the parent.
        pool._closed = True
        _inherited.append(pool)
    pools.clear()


def register_fork_handler() -> None:
    global _registered
    if not _registered:
        os.register_at_fork(after_in_child=forget_inherited_connections)
        _registered = True
