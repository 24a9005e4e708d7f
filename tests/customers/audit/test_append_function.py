"""PostgreSQL hashes each audit row in SQL (migration 0012), Python hashes it again to
verify: the two must agree to the bit. Known answers for both, and awkward values written
through the database's own append and checked by the Python verifier."""

import json
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, connection, transaction

from customers.audit import chain, verify
from customers.audit import log as audit_log
from customers.models import HistoryReview, LookupEvent

pytestmark = pytest.mark.django_db

KNOWN_EVENT = {
    "sequence": 7,
    "created_at": datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=UTC),
    "user_id": 42,
    "username": "sam.sales",
    "project_id": 2143,
    "outcome": "found",
    "customer_id": 79298,
    "channel": "web",
    "ip": "10.1.2.3",
    "user_agent": 'Mozilla/5.0 "quoted" \\ back',
    "request_id": "req-1",
    "duration_ms": 182,
    "cache_hit": False,
    "prev_hash": "ab" * 32,
    "auth_method": "oidc",
    "reason": "Customer called",
    "role": None,
}
KNOWN_EVENT_HASH = "e0cd9e57793b6024ee80e6eebd35d22f4b9f3e69591122027ff7739242846e7a"

AWKWARD_TEXT = [
    'quote " backslash \\ slash /',
    "controls \x01\x08\t\n\x0c\r\x1f and DEL \x7f",
    "Ünïcödé, 日本語, emoji 🌞, line separator \u2028 paragraph \u2029",
    "",
]


def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the SQL hash is PostgreSQL's; SQLite hashes in Python only")


def _sql_lookup_hash(values: dict) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT customers_lookupevent_hash(%s, %s, %s, %s, %s, %s, %s, %s, %s::inet, "
            "%s, %s, %s, %s, %s, %s, %s, %s)",
            [values[name] for name in (*chain.LOOKUP_FIELDS, *chain.LOOKUP_LATER_FIELDS)],
        )
        return cursor.fetchone()[0]


def test_python_hashes_the_known_event_to_its_known_answer():
    assert chain.lookup_hash(KNOWN_EVENT) == KNOWN_EVENT_HASH


def test_the_database_hashes_the_known_event_to_the_same_known_answer():
    _postgresql()
    assert _sql_lookup_hash(KNOWN_EVENT) == KNOWN_EVENT_HASH


@pytest.mark.parametrize("text", AWKWARD_TEXT)
@pytest.mark.parametrize(
    ("ip", "auth_method", "reason", "role"),
    [
        ("10.1.2.3", "oidc", "x", "Sales"),
        ("2001:db8::1", None, None, None),
        (None, "password", None, ""),
        ("::ffff:10.0.0.1", None, "", "Admins, Sales"),
    ],
)
def test_the_database_and_python_agree_on_awkward_values(text, ip, auth_method, reason, role):
    _postgresql()
    values = {
        **KNOWN_EVENT, "username": text or "u", "user_agent": text, "request_id": text[:64], "ip": ip,
        "auth_method": auth_method, "reason": text if reason else reason, "role": role, "customer_id": None,
        "user_id": None,
        "cache_hit": True, "created_at": datetime(2001, 1, 1, tzinfo=UTC),
    }  # fmt: skip
    assert _sql_lookup_hash(values) == chain.lookup_hash(values)


@pytest.mark.parametrize("text", AWKWARD_TEXT)
def test_events_appended_by_the_database_verify_in_python(sales_user, text):
    _postgresql()
    event = audit_log.record_lookup(
        user=sales_user, project_id=2143, outcome="found", channel="web", ip="2001:db8::7",
        user_agent=text, request_id=text[:64], reason=text or None, auth_method="oidc",
    )  # fmt: skip
    stored = LookupEvent.objects.values(*chain.LOOKUP_FIELDS, *chain.LOOKUP_LATER_FIELDS, "hash").get(pk=event.pk)
    assert chain.lookup_hash(stored) == stored["hash"] == event.hash
    assert verify.verify_chain().ok


DETAILS = [
    {},
    {"user": "sam", "project": 2143, "from": "2026-01-01"},
    {"z": 1, "a": 2, "Z": 3, "é": 4, "aa": 5, "b": [3, 2, 1], "日": {"y": None, "x": True, "w": False}},
    {"projects": [2143, 2144, -1, 9007199254740993], "note": AWKWARD_TEXT[1] + AWKWARD_TEXT[2], "empty": []},
]


@pytest.mark.parametrize("detail", DETAILS)
def test_the_databases_canonical_json_is_pythons(detail):
    _postgresql()
    with connection.cursor() as cursor:
        cursor.execute("SELECT customers_audit_canonical_json(%s::jsonb)", [json.dumps(detail)])
        assert cursor.fetchone()[0] == json.dumps(detail, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


@pytest.mark.parametrize("detail", DETAILS)
def test_review_records_appended_by_the_database_verify_in_python(admin_user_role, detail):
    _postgresql()
    review = audit_log.record_review(
        user=admin_user_role, kind=HistoryReview.Kind.VIEW, detail=detail, rows=3, ip="10.9.8.7", request_id="r"
    )
    stored = HistoryReview.objects.values(*chain.REVIEW_FIELDS, "hash").get(pk=review.pk)
    assert chain.review_hash(stored) == stored["hash"] == review.hash
    assert stored["detail"] == detail
    assert verify.verify_chain().ok


def test_a_review_detail_with_a_fraction_is_refused_and_nothing_is_written(admin_user_role):
    """A fraction could be written two ways (1e-07, 0.0000001): the chain takes whole numbers."""
    _postgresql()
    with pytest.raises(DatabaseError, match="not whole"), transaction.atomic():
        audit_log.record_review(user=admin_user_role, kind=HistoryReview.Kind.VIEW, detail={"share": 0.5})
    assert not HistoryReview.objects.exists()


def test_the_database_takes_the_time_under_the_lock_in_sequence_order(sales_user):
    _postgresql()
    events = [audit_log.record_lookup(user=sales_user, project_id=n, outcome="found", channel="web") for n in range(5)]
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5]
    assert [e.created_at for e in events] == sorted(e.created_at for e in events)
