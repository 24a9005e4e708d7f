"""Helpers for audit tests: write rows, tamper behind the portal's back, run the verifier."""

from __future__ import annotations

import importlib
from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from customers.audit import heads
from customers.audit import log as audit_log
from customers.models import LookupEvent

TABLE = "customers_lookupevent"
REVIEWS = "customers_historyreview"
ANCHORS = "customers_auditanchor"
TRIGGERS = importlib.import_module("customers.migrations.0003_append_only_triggers")
REVIEW_TRIGGERS = importlib.import_module("customers.migrations.0007_append_only_reviews")


def record(user, project_id: int = 2143, **fields) -> LookupEvent:
    return audit_log.record_lookup(user=user, project_id=project_id, outcome="found", channel="web", **fields)


def tamper(sql: str, params: list | None = None, *, table: str = TABLE) -> None:
    """Change a table behind the application's back, as someone with database access could."""
    triggers = TRIGGERS if table == TABLE else REVIEW_TRIGGERS
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks block ALTER
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            cursor.execute(sql, params)
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        else:
            for drop in triggers.SQLITE_REVERSE:
                cursor.execute(drop)
            cursor.execute(sql, params)
            for create in triggers.SQLITE:
                cursor.execute(create)


def verify(*args: str, **options) -> str:
    """verify_audit_log's answer as an auditor reads it: its line, or ERROR and the failure."""
    out = StringIO()
    try:
        call_command("verify_audit_log", *args, stdout=out, stderr=StringIO(), **options)
    except CommandError as exc:
        return f"ERROR {exc}"
    return out.getvalue().strip()


def backdated_chain(user, *, old_count: int, total: int) -> None:
    """An honest chain whose first ``old_count`` events are 400 days old, old enough to prune."""
    old = timezone.now() - timedelta(days=400)
    prev = heads.GENESIS
    for sequence in range(1, total + 1):
        event = LookupEvent(
            sequence=sequence,
            created_at=old + timedelta(seconds=sequence) if sequence <= old_count else timezone.now(),
            user=user,
            username=user.username,
            project_id=1000 + sequence,
            outcome="found",
            channel="web",
            prev_hash=prev,
        )
        event.hash = prev = heads.hash_of(event)
        event.save(force_insert=True)
