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
- a connection error fails the whole batch (each thread gets an error of the same kind, as
  before: the lookup is not shown); any other database error (one row the function refuses)
  is retried row by row, so one bad row does not take the others down with it;
- anything else that stops the writer (a bug) is logged once, with its traceback, and each
  waiting thread gets a ``DatabaseError`` of its own, caused by it: the lookups are withheld
  as in an outage, not answered with the same exception object raised in many threads.

Writers in other processes and on other app servers still take turns on the lock: each
turn now writes everything that queued in that process meanwhile.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, Error, InterfaceError, OperationalError, transaction

logger = logging.getLogger(__name__)

# Rows per transaction, at most: bounds how long one turn holds the lock.
MAX_BATCH = 64


@dataclass
class _Pending:
    fields: dict[str, Any]
    done: bool = False
    row: Any = None
    error: BaseException | None = None

    def outcome(self) -> Any:
        """The committed row, or a fresh exception for this thread (an exception object
        raised in several threads at once would share, and garble, one traceback)."""
        if self.error is None:
            return self.row
        if isinstance(self.error, Error):
            raise type(self.error)(*self.error.args) from self.error
        raise DatabaseError("The audit row was not written.") from self.error


class GroupCommit:
    """One per process. ``append(fields)`` returns the row ``write`` made of ``fields``,
    once it is committed; ``write`` takes the fields of every row queued together and
    returns their rows, in order, all in the one transaction around it."""

    def __init__(self, write: Callable[[list[dict[str, Any]]], list[Any]]) -> None:
        self._write = write
        self._start_afresh()
        # Figures for the benchmark and the tests: transactions written, rows in them.
        self.transactions = 0
        self.rows = 0
        # A child forked while a thread of the parent was writing would wait for a writer
        # it does not have: it starts with its own, empty queue.
        os.register_at_fork(after_in_child=self._start_afresh)

    def _start_afresh(self) -> None:
        self._queue: list[_Pending] = []
        self._writing = False
        self._changed = threading.Condition(threading.Lock())

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
            # Whatever else stopped the writer (a bug): logged here, once; each thread
            # waiting on this batch withholds its lookup (_Pending.outcome).
            logger.exception("The audit writer failed; lookups withheld: %d", len(batch))
            for pending in batch:
                pending.error = exc
        else:
            self.transactions += 1
            self.rows += len(batch)
            for pending, row in zip(batch, rows, strict=True):
                pending.row = row
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
        except Exception as exc:  # a bug, as in _write_batch: logged, this lookup withheld
            logger.exception("The audit writer failed; lookups withheld: 1")
            pending.error = exc
        else:
            self.transactions += 1
            self.rows += 1
