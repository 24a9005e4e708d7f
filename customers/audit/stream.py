"""The audit event stream: one JSON line per lookup event, review record, checkpoint and
prune on the ``solarproof_portal.audit`` logger, so a log shipper (Vector, Fluent Bit, a
SIEM) keeps a copy off the box. A lookup's line has the CSV export's columns plus the
row's hash; nothing about the customer beyond what the audit row holds.

Lines are written after the row's transaction commits, so a rolled-back row never
appears; the row is the record, the line its copy.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.utils import timezone

from customers.models import HistoryReview, LookupEvent

STREAM = "solarproof_portal.audit"
logger = logging.getLogger(STREAM)


def emit(record: str, fields: dict[str, Any]) -> None:
    logger.info(json.dumps({"log": STREAM, "record": record, **fields}, ensure_ascii=False, default=str))


def _time(value: Any) -> str:
    return timezone.localtime(value).isoformat()


def lookup_fields(event: LookupEvent) -> dict[str, Any]:
    fields = {
        "sequence": event.sequence,
        "time": _time(event.created_at),
        "username": event.username,
        "project_id": event.project_id,
        "outcome": str(event.outcome),
        "customer_id": event.customer_id,
        "channel": str(event.channel),
        "ip": event.ip,
        "request_id": event.request_id,
        "duration_ms": event.duration_ms,
        "auth_method": event.auth_method,
    }
    if settings.LOOKUP_REASON != "off":
        fields["reason"] = event.reason
    return {**fields, "hash": event.hash, "prev_hash": event.prev_hash}


def review_fields(review: HistoryReview) -> dict[str, Any]:
    return {
        "sequence": review.sequence,
        "time": _time(review.created_at),
        "username": review.username,
        "kind": str(review.kind),
        "detail": review.detail,
        "rows": review.rows,
        "ip": review.ip,
        "request_id": review.request_id,
        "hash": review.hash,
        "prev_hash": review.prev_hash,
    }
