"""How a row of an audit chain is hashed. Needs no model, so migrations, the writer and
the verifier share it; a change here would break every stored hash, so nothing changes.

Two chains exist: lookup events, and review records (somebody read the log). Each row
hashes exactly the values stored plus the previous row's hash.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

LOOKUP_FIELDS = (
    "sequence",
    "created_at",
    "user_id",
    "username",
    "project_id",
    "outcome",
    "customer_id",
    "channel",
    "ip",
    "user_agent",
    "request_id",
    "duration_ms",
    "cache_hit",
    "prev_hash",
)
# Added after the first events were written: hashed only where set, so every event
# written before them still verifies as it was. auth_method came first and is hashed as
# a bare value (as it always was); later ones as [name, value], so no value can be
# moved from one column to another without changing the hash.
LOOKUP_LATER_FIELDS = ("auth_method", "reason", "role")

REVIEW_FIELDS = (
    "sequence",
    "created_at",
    "user_id",
    "username",
    "kind",
    "detail",
    "rows",
    "ip",
    "request_id",
    "prev_hash",
)


def canonical_time(value: datetime) -> str:
    """A time as it is hashed. Microseconds are what both databases store: exactly that."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical_value(value: Any) -> Any:
    return canonical_time(value) if isinstance(value, datetime) else value


def canonical_json(values: list[Any]) -> str:
    """The exact text that is hashed."""
    return json.dumps(
        [_canonical_value(value) for value in values], separators=(",", ":"), ensure_ascii=False, sort_keys=True
    )


def _digest(values: list[Any]) -> str:
    return hashlib.sha256(canonical_json(values).encode()).hexdigest()


def lookup_hashed_values(values: dict[str, Any]) -> list[Any]:
    """What a lookup event's hash covers, in order (PostgreSQL's append builds on it too)."""
    hashed = [values[name] for name in LOOKUP_FIELDS]
    if values.get("auth_method") is not None:
        hashed.append(values["auth_method"])
    if values.get("reason") is not None:
        hashed.append(["reason", values["reason"]])
    if values.get("role") is not None:
        hashed.append(["role", values["role"]])
    return hashed


def lookup_hash(values: dict[str, Any]) -> str:
    return _digest(lookup_hashed_values(values))


def review_hash(values: dict[str, Any]) -> str:
    return _digest([values[name] for name in REVIEW_FIELDS])
