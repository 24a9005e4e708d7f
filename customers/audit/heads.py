"""Where each audit chain ends, and the locks that serialise appends to it.

Two chains: every ``LookupEvent``, and every ``HistoryReview`` (somebody read the log).
Appends are serialised (a transaction-scoped advisory lock per chain on PostgreSQL;
SQLite's write lock, taken at BEGIN IMMEDIATE), so concurrent writers on any number of
app servers never fork a chain."""

from __future__ import annotations

import logging

from django.db import connection, models

from customers.audit import chain
from customers.models import AuditAnchor, HistoryReview, LookupEvent

logger = logging.getLogger(__name__)

GENESIS = chain.GENESIS
CHAIN_FIELDS = chain.LOOKUP_FIELDS
LATER_CHAIN_FIELDS = chain.LOOKUP_LATER_FIELDS
event_hash = chain.lookup_hash
# Any constants work; they name each chain's lock among the database's advisory locks.
LOOKUP_LOCK_KEY = 0x50_0F_A0_D1
REVIEW_LOCK_KEY = 0x50_0F_A0_D2
IP_FIELD = models.GenericIPAddressField()


def hash_of(event: LookupEvent) -> str:
    return chain.lookup_hash({name: getattr(event, name) for name in (*CHAIN_FIELDS, *LATER_CHAIN_FIELDS)})


def review_hash_of(review: HistoryReview) -> str:
    return chain.review_hash({name: getattr(review, name) for name in chain.REVIEW_FIELDS})


def lock(key: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
    # SQLite: the transaction began with BEGIN IMMEDIATE (settings), so it holds the lock.


def lock_chain() -> None:
    lock(LOOKUP_LOCK_KEY)


def head() -> tuple[int, str]:
    """The sequence and hash the next event links to."""
    last = LookupEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    if last:
        return last
    anchor = AuditAnchor.objects.order_by("-through_sequence").values_list("through_sequence", "through_hash").first()
    return anchor or (0, GENESIS)


def review_head() -> tuple[int, str]:
    last = HistoryReview.objects.order_by("-sequence").values_list("sequence", "hash").first()
    return last or (0, GENESIS)
