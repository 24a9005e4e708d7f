"""The customer access report as a signed statement (``report.json``), and its check.

Made on the portal from an ``AccessReport`` (``customers.history.access_report``);
checked anywhere with the public keys alone (``verify_access_report``). This module
reads no database and no setting but the keys, so the check runs on an auditor's
machine that has nothing of the portal's configuration.

What a statement that verifies proves:

- The portal's audit key (one of ``AUDIT_VERIFY_KEYS``) signed exactly this statement:
  its header (customer ID, projects, coverage, generation time, who made it) and every
  row, in this order. Each row also carries its own signature over its line number and
  fields, so an edited, dropped, inserted or reordered line is named, not merely noticed.
- Each row's fields are the ones its chain hash was computed over when the lookup was
  written (the hash is recomputed from them, as ``verify_audit_log`` does), so each row
  matches, field for field, the event with that sequence in any copy of the log that
  verifies. The signed checkpoint inside (the chains' heads when the report was made, also
  appended to the checkpoint file) covers every row: none is newer than it.

What it does not prove: that no lookup was left out. The rows are not consecutive in
the chain, so the statement cannot carry the chain between them without carrying other
customers' lookups. Completeness rests on the portal's query, which the signature
vouches for, over the range the header states (``covers``: from the oldest event the log
still holds to the checkpoint). Anyone with the log (and the checkpoint file) can check
that claim later: ``verify_audit_log`` proves the log whole up to the checkpoint, and the
same report made over it must list the same rows up to the checkpoint's sequence.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature

from customers.audit import chain, signing

STATEMENT_TYPE = "access_report"
VERSION = 1

# Each row: its audit fields exactly as hashed, then its chain hash.
ROW_FIELDS = (*chain.LOOKUP_FIELDS, *chain.LOOKUP_LATER_FIELDS, "hash")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_values(event: Any) -> dict[str, Any]:
    """An event's audit fields as the chain hashed them (the time as its canonical text)."""
    values = {name: getattr(event, name) for name in ROW_FIELDS}
    values["created_at"] = chain.canonical_time(values["created_at"])
    return values


def _row_message(report_id: str, line: int, values: dict[str, Any]) -> bytes:
    return _canonical({"report": report_id, "line": line, "row": values})


def sign_statement(header: dict[str, Any], events: list[Any], checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The statement: ``header`` (which must hold ``report_id``), the events as rows in
    sequence order, each signed with its line number, the checkpoint, and one signature
    over all of it."""
    key = signing.private_key()
    rows = []
    for line, event in enumerate(events, start=1):
        values = row_values(event)
        signature = base64.b64encode(key.sign(_row_message(header["report_id"], line, values))).decode()
        rows.append({"line": line, **values, "row_signature": signature})
    statement = {"type": STATEMENT_TYPE, "version": VERSION, **header, "rows": rows, "checkpoint": checkpoint}
    return signing.sign(statement)


# --- the check -----------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    where: str  # "line 3 (sequence 1234)", "the statement", "the checkpoint"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class Checked:
    problems: list[Problem]
    rows: int
    customer_id: Any
    checkpoint_sequence: Any

    @property
    def ok(self) -> bool:
        return not self.problems


class NotAStatement(ValueError):
    """The file is not an access report statement at all (not JSON, another kind)."""


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of a repeated key, which is what was signed; a reader of
    # the file may see the first: a name written twice is refused, so what verifies is
    # what anyone reads.
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise NotAStatement(f"it names {', '.join(map(repr, repeated))} more than once in one object")
    return dict(pairs)


def parse(text: str) -> dict[str, Any]:
    try:
        statement = json.loads(text, object_pairs_hook=_refuse_repeated_keys)
    except NotAStatement:
        raise
    except json.JSONDecodeError as exc:
        raise NotAStatement(f"it is not JSON ({exc.msg}, line {exc.lineno})") from None
    except ValueError as exc:  # a number of more digits than Python converts
        raise NotAStatement(f"it is not JSON that can be read ({exc})") from None
    except RecursionError:
        raise NotAStatement("it is nested too deeply to be one") from None
    if not isinstance(statement, dict) or statement.get("type") != STATEMENT_TYPE:
        raise NotAStatement("its type is not access_report")
    if statement.get("version") != VERSION:
        raise NotAStatement(f"it is version {statement.get('version')!r}; this portal reads version {VERSION}")
    if not isinstance(statement.get("rows"), list) or not isinstance(statement.get("checkpoint"), dict):
        raise NotAStatement("it has no rows or no checkpoint")
    return statement


def check(statement: dict[str, Any]) -> Checked:
    """Every problem with the statement, each naming where it is; none when it holds."""
    problems = list(_check_signature(statement))
    rows = [row for row in statement["rows"] if isinstance(row, dict)]
    if len(rows) != len(statement["rows"]):
        problems.append(Problem("the statement", "a row is not an object"))
    problems += _check_rows(statement, rows)
    problems += _check_checkpoint(statement, rows)
    return Checked(problems, len(rows), statement.get("customer_id"), statement["checkpoint"].get("sequence"))


def _check_signature(statement: dict[str, Any]) -> Iterator[Problem]:
    keys = signing.verify_keys()
    if str(statement.get("key_id")) not in keys:
        yield Problem(
            "the statement",
            f"signed with key {statement.get('key_id')!r}, which is not one of AUDIT_VERIFY_KEYS "
            f"({', '.join(sorted(keys)) or 'none set'}): it cannot be checked, so nothing in it is proven",
        )
    elif signing.check(statement) is not signing.Check.VALID:
        yield Problem("the statement", "its signature does not hold: something in it was changed after signing")


def _where(row: dict[str, Any], line: Any) -> str:
    return f"line {line} (sequence {row.get('sequence')})"


def _check_rows(statement: dict[str, Any], rows: list[dict[str, Any]]) -> Iterator[Problem]:
    key = signing.verify_keys().get(str(statement.get("key_id")))
    report_id = statement.get("report_id")
    customer_id = statement.get("customer_id")
    projects = statement.get("projects") if isinstance(statement.get("projects"), list) else []
    previous_sequence: Any = None
    for position, row in enumerate(rows, start=1):
        line = row.get("line")
        where = _where(row, line)
        if line != position:
            yield Problem(
                where,
                f"it is at position {position}: "
                + (f"line {position} is missing (dropped)" if isinstance(line, int) and line > position
                   else "the lines are out of order (reordered) or one was added"),
            )  # fmt: skip
        sequence = row.get("sequence")
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            yield Problem(where, "its sequence is not a whole number")
        elif isinstance(previous_sequence, int) and sequence <= previous_sequence:
            yield Problem(where, f"it comes after sequence {previous_sequence}: the rows are out of order (reordered)")
        previous_sequence = sequence
        missing = [name for name in ROW_FIELDS if name not in row]
        if missing:
            yield Problem(where, f"it lacks {', '.join(missing)}")
            continue
        values = {name: row[name] for name in ROW_FIELDS}
        try:
            recomputed = chain.lookup_hash(values)
        except TypeError:
            recomputed = None
        if recomputed != row["hash"]:
            yield Problem(where, "its fields do not match its chain hash (edited)")
        if key is not None and not _row_signature_holds(key, report_id, line, values, row.get("row_signature")):
            yield Problem(where, "its signature does not hold for this line (edited, moved or taken from elsewhere)")
        if values["customer_id"] is not None and values["customer_id"] != customer_id:
            yield Problem(where, f"it shows customer {values['customer_id']}, not the report's {customer_id}")
        elif values["customer_id"] is None and values["project_id"] not in projects:
            yield Problem(where, f"project {values['project_id']} is not one of the report's projects")
    counted = statement.get("row_count")
    if counted != len(rows):
        yield Problem("the statement", f"it says {counted!r} rows and holds {len(rows)} (rows dropped or added)")


def _row_signature_holds(key: Any, report_id: Any, line: Any, values: dict[str, Any], signature: Any) -> bool:
    try:
        key.verify(base64.b64decode(str(signature), validate=True), _row_message(report_id, line, values))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def _check_checkpoint(statement: dict[str, Any], rows: list[dict[str, Any]]) -> Iterator[Problem]:
    checkpoint = statement["checkpoint"]
    if signing.is_legacy(checkpoint) or signing.check(checkpoint) is not signing.Check.VALID:
        yield Problem("the checkpoint", "its signature does not hold, or its key is not one of AUDIT_VERIFY_KEYS")
        return
    covered = checkpoint.get("sequence")
    if not isinstance(covered, int):
        yield Problem("the checkpoint", "it names no sequence")
        return
    covers = statement.get("covers") if isinstance(statement.get("covers"), dict) else {}
    if covers.get("to_sequence") != covered:
        yield Problem(
            "the statement", f"it says it covers up to {covers.get('to_sequence')!r}, its checkpoint {covered}"
        )
    for row in rows:
        sequence = row.get("sequence")
        if isinstance(sequence, int) and sequence > covered:
            yield Problem(_where(row, row.get("line")), f"it is newer than the checkpoint (sequence {covered})")
        elif sequence == covered and row.get("hash") != checkpoint.get("hash"):
            yield Problem(_where(row, row.get("line")), "it is the checkpoint's event but its hash differs")
