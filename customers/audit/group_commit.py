"""PostgreSQL: lookup events from the threads of one process that arrive together are
appended in one transaction, under one hold of the chain's lock, and committed with one
WAL flush.

Why: the chain's lock is held from its grant to the end of COMMIT, and COMMIT waits for
its WAL flush (bench/NOTES.md, "Issue 23: the chained audit append": 75-80 % of the hold).
The flush has to be inside the lock, because the next append reads this row as its head
and sees it only once it is committed. One append per transaction therefore capped the
chain at one flush per append (about 200 appends a second on the benchmark machine,
whatever the number of writers), where plain INSERTs share their flushes.

How: each thread puts its row in this process's queue. If no thread of the process is
writing, it becomes the writer: it takes what is queued (its own row and any others, up to
``MAX_BATCH``), calls the append function once per row inside one transaction, and commits;
the function takes the lock (re-entrant within the transaction) and reads the head, which
within the transaction is the row just appended. The other threads wait, holding no
database connection, until the writer has committed their rows, and then return them; a
thread that arrives while a batch is being written goes into the next one, written by the
first of them to wake. So:

- every row is committed before ``append`` returns it (the customer is shown after);
- the chain is exactly what one-at-a-time appends would have made, in the order the rows
  were queued: the same function, the same hash;
- a connection error fails the whole batch (each thread gets it, as before: the lookup is
  not shown); any other database error (one row the function refuses) is retried row by row,
  so one bad row does not take the others down with it.

Writers in other processes and on other app servers still take turns on the lock: each
turn now writes everything that queued in that process meanwhile.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, transaction

# Rows per transaction, at most: bounds how long one turn holds the lock.
MAX_BATCH = 64


@dataclass
class _Pending:
    fields: dict[str, Any]
    done: bool = False
    row: Any = None
    error: BaseException | None = None
    batch_size: int = field(default=0, compare=False)

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.row


class GroupCommit:
    """One per process. ``append(fields)`` returns the row ``write`` made of ``fields``,
    once it is committed; ``write`` takes the fields of every row queued together and
    returns their rows, in order, all in the one transaction around it."""

    def __init__(self, write: Callable[[list[dict[str, Any]]], list[Any]]) -> None:
        self._write = write
        self._queue: list[_Pending] = []
        self._writing = False
        self._changed = threading.Condition(threading.Lock())
        # Figures for the benchmark and the tests: transactions written, rows in them.
        self.transactions = 0
        self.rows = 0

    def append(self, fields: dict[str, Any]) -> Any:
        pending = _Pending(fields)
        with self._changed:
            self._queue.append(pending)
            while not pending.done:
                if self._writing:
                    self._changed.wait()
                    continue
                self._writing = True
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                self._changed.release()
                try:
                    self._write_batch(batch)
                finally:
                    self._changed.acquire()
                    self._writing = False
                    self._changed.notify_all()
        return pending.outcome()

    def _write_batch(self, batch: list[_Pending]) -> None:
        """Write the batch in one transaction; every row ends with its row or its error."""
        try:
            with transaction.atomic():
                rows = self._write([pending.fields for pending in batch])
        except (OperationalError, InterfaceError) as exc:
            # The database or the connection is away: every row of the batch fails, at once.
            for pending in batch:
                pending.error = exc
        except DatabaseError as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                # One row refused, nothing committed: each row again, on its own.
                for pending in batch:
                    self._write_alone(pending)
        except BaseException as exc:
            # Whatever else stopped the writer reaches every thread waiting on this batch.
            for pending in batch:
                pending.error = exc
        else:
            self.transactions += 1
            self.rows += len(batch)
            for pending, row in zip(batch, rows, strict=True):
                pending.row, pending.batch_size = row, len(batch)
        finally:
            for pending in batch:
                if pending.row is None and pending.error is None:  # never left without an answer
                    pending.error = DatabaseError("The audit row was not written.")
                pending.done = True

    def _write_alone(self, pending: _Pending) -> None:
        try:
            with transaction.atomic():
                (pending.row,) = self._write([pending.fields])
        except DatabaseError as exc:
            pending.error = exc
        else:
            self.transactions += 1
            self.rows += 1
            pending.batch_size = 1


_combiners: dict[Callable[..., Any], GroupCommit] = {}
_combiners_lock = threading.Lock()


def combiner(write: Callable[[list[dict[str, Any]]], list[Any]]) -> GroupCommit:
    """This process's combiner for ``write``."""
    with _combiners_lock:
        found = _combiners.get(write)
        if found is None:
            found = _combiners[write] = GroupCommit(write)
        return found


def _forget_after_fork() -> None:
    # A child forked while a thread of the parent was writing would wait for a writer it
    # does not have: it starts with its own, empty combiners.
    global _combiners_lock
    _combiners.clear()
    _combiners_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
