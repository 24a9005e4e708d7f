"""Signed statements kept outside the database: checkpoints of both chains' heads, taken
automatically every AUDIT_CHECKPOINT_EVERY events and on the first write after
AUDIT_CHECKPOINT_MINUTES, appended to AUDIT_CHECKPOINT_FILE and the audit stream."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from customers.audit import heads, signing
from customers.audit import stream as audit_stream
from customers.models import AuditAnchor

logger = logging.getLogger(__name__)

# --- signed statements: checkpoints and prune records ----------------------------------

# No scheduler runs inside the portal: "every M minutes" is checked on each write, per
# process, against the last checkpoint this process took. An idle portal takes none,
# and loses nothing by it: its log has not moved.
_last_checkpoint = time.monotonic()


def checkpoint_due(sequence: int) -> bool:
    every, minutes = settings.AUDIT_CHECKPOINT_EVERY, settings.AUDIT_CHECKPOINT_MINUTES
    if every and sequence % every == 0:
        return True
    return bool(minutes) and time.monotonic() - _last_checkpoint >= minutes * 60


def _statement_time(value: Any = None) -> str:
    return (value or timezone.now()).astimezone(UTC).isoformat(timespec="microseconds")


def checkpoint() -> dict[str, Any]:
    """A signed statement of both chains' heads, to be kept outside the database."""
    sequence, head_hash = heads.head()
    review_sequence, review_hash = heads.review_head()
    return signing.sign(
        {
            "type": "checkpoint",
            "sequence": sequence,
            "hash": head_hash,
            "review_sequence": review_sequence,
            "review_hash": review_hash,
            "time": _statement_time(),
        }
    )


def statement_line(statement: dict[str, Any]) -> str:
    """A statement as AUDIT_CHECKPOINT_FILE keeps it: one line of JSON, keys sorted, UTF-8."""
    return json.dumps(statement, sort_keys=True, ensure_ascii=False)


def publish(statement: dict[str, Any]) -> None:
    """Append a statement to AUDIT_CHECKPOINT_FILE (when set) and the audit stream."""
    if settings.AUDIT_CHECKPOINT_FILE:
        line = statement_line(statement) + "\n"
        # O_APPEND: each line lands whole at the end, whichever process writes it.
        fd = os.open(settings.AUDIT_CHECKPOINT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    audit_stream.emit(statement["type"], {name: value for name, value in statement.items() if name != "type"})


def take_checkpoint() -> dict[str, Any]:
    global _last_checkpoint
    statement = checkpoint()
    publish(statement)
    _last_checkpoint = time.monotonic()
    return statement


def prune_statement(anchor: AuditAnchor) -> dict[str, Any]:
    """What a prune record's signature covers (and what the checkpoint file keeps of it)."""
    statement = {
        "type": "prune",
        "through_sequence": anchor.through_sequence,
        "through_hash": anchor.through_hash,
        "events_pruned": anchor.events_pruned,
        "older_than_days": anchor.older_than_days,
        "username": anchor.username,
        "time": _statement_time(anchor.created_at),
    }
    if anchor.key_id:
        statement.update(key_id=anchor.key_id, signature=anchor.signature)
    else:
        statement["signature"] = anchor.signature
    return statement


def read_statements(path: Path | str) -> list[dict[str, Any]]:
    """The statements in a checkpoint file: JSON lines, or one JSON object (the format
    audit_checkpoint printed before checkpoints were kept as lines)."""
    text = Path(path).read_text()
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        return [whole]
    statements = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            statement = json.loads(line)
        except ValueError:
            raise ValueError(f"line {number} is not JSON") from None
        if not isinstance(statement, dict):
            raise ValueError(f"line {number} is not a statement")
        statements.append(statement)
    return statements


def checkpoint_file_statements() -> list[dict[str, Any]]:
    """The statements in AUDIT_CHECKPOINT_FILE, if it is set and exists."""
    path = settings.AUDIT_CHECKPOINT_FILE
    if not path or not Path(path).exists():
        return []
    return read_statements(path)
