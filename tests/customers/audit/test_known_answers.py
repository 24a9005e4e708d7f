"""Known answers for the audit chains: fixed rows and the exact text and SHA-256 each hashes
to, written out here. Every stored hash depends on this encoding, so any change to it (a
field dropped, reordered or renamed, another time format, escaped non-ASCII, a space)
must fail here, loudly, before it breaks every existing log after an upgrade."""

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection

from customers.audit import chain, heads
from customers.models import HistoryReview, LookupEvent
from tests.support.audit import verify

BRISBANE = timezone(timedelta(hours=10))
USERNAME = "zoë.ó'brien"

HASH_1 = "f725ef8c3860aec52905642f1e15a182615db3d73f0d3ce7145b7719e2c11833"
HASH_2 = "97caa5ba30ad3e1312d55ae08fc473ca6fe31dd904c9314b2720980922be5ba3"
HASH_3 = "44e617565bcab73e504d56e83a7bdc2e9698d9946169f9843eae0290012df745"
HASH_4 = "9a8263c355870fd7b635ab2f0f1ec8036eb6bfcf0d5765b92bf312d9ce4714f4"
REVIEW_HASH = "c99763b766257887cdf83512ae90b54c02ba2d84eb87942047f6882b856e96fd"

# A signed-in lookup with a reason, quotes, a backslash and non-ASCII text.
EVENT_1 = {
    "sequence": 1,
    "created_at": datetime(2026, 3, 1, 2, 3, 4, 123456, tzinfo=UTC),
    "user_id": 4242,
    "username": USERNAME,
    "project_id": 2143,
    "outcome": "found",
    "customer_id": 79298,
    "channel": "web",
    "ip": "203.0.113.7",
    "user_agent": 'Mozilla/5.0 ☀ "quoted" \\ back',
    "request_id": "req-1",
    "duration_ms": 412,
    "cache_hit": False,
    "prev_hash": chain.GENESIS,
    "auth_method": "password",
    "reason": 'Ring Zoë about the inverter — job "7"',
}
# Written in Brisbane time on a whole second; no customer, no reason, IPv6.
EVENT_2 = {
    "sequence": 2,
    "created_at": datetime(2026, 3, 1, 12, 3, 5, tzinfo=BRISBANE),
    "user_id": 4242,
    "username": USERNAME,
    "project_id": 4294967295,
    "outcome": "no_customer",
    "customer_id": None,
    "channel": "web",
    "ip": "2001:db8::1",
    "user_agent": "",
    "request_id": "",
    "duration_ms": 0,
    "cache_hit": True,
    "prev_hash": HASH_1,
    "auth_method": "oidc",
    "reason": None,
}
# One microsecond past the second (what both databases keep); a reason without a sign-in
# method (the command line); a line separator, which JSON may leave unescaped.
EVENT_3 = {
    "sequence": 3,
    "created_at": datetime(2026, 3, 1, 2, 3, 5, 1, tzinfo=UTC),
    "user_id": 4242,
    "username": USERNAME,
    "project_id": 7,
    "outcome": "rate_limited",
    "customer_id": None,
    "channel": "cli",
    "ip": None,
    "user_agent": "",
    "request_id": "",
    "duration_ms": 3,
    "cache_hit": False,
    "prev_hash": HASH_2,
    "auth_method": None,
    "reason": "Łódź 日本 \u2028",
}
# The staff member's roles at the time, after the reason (both as [name, value]).
EVENT_4 = {
    "sequence": 4,
    "created_at": datetime(2026, 3, 1, 2, 3, 6, 999999, tzinfo=UTC),
    "user_id": 4242,
    "username": USERNAME,
    "project_id": 2144,
    "outcome": "found",
    "customer_id": 72146,
    "channel": "web",
    "ip": "203.0.113.7",
    "user_agent": "",
    "request_id": "req-4",
    "duration_ms": 9,
    "cache_hit": True,
    "prev_hash": HASH_3,
    "auth_method": "oidc",
    "reason": "Ring Zoë",
    "role": "Installers, Admins",
}
REVIEW = {
    "sequence": 1,
    "created_at": datetime(2026, 3, 1, 2, 3, 4, 500000, tzinfo=UTC),
    "user_id": 4242,
    "username": USERNAME,
    "kind": "export",
    "detail": {"project": 2143, "outcome": "found"},
    "rows": 12,
    "ip": "203.0.113.7",
    "request_id": "req-9",
    "prev_hash": chain.GENESIS,
}

ZEROS = "0" * 64
TEXT_1 = (
    '[1,"2026-03-01T02:03:04.123456+00:00",4242,"zoë.ó\'brien",2143,"found",79298,"web","203.0.113.7",'
    '"Mozilla/5.0 ☀ \\"quoted\\" \\\\ back","req-1",412,false,"' + ZEROS + '","password",'
    '["reason","Ring Zoë about the inverter — job \\"7\\""]]'
)
TEXT_2 = (
    '[2,"2026-03-01T02:03:05.000000+00:00",4242,"zoë.ó\'brien",4294967295,"no_customer",null,"web",'
    '"2001:db8::1","","",0,true,"' + HASH_1 + '","oidc"]'
)
TEXT_3 = (
    '[3,"2026-03-01T02:03:05.000001+00:00",4242,"zoë.ó\'brien",7,"rate_limited",null,"cli",null,"","",3,'
    'false,"' + HASH_2 + '",["reason","Łódź 日本 \u2028"]]'
)
TEXT_4 = (
    '[4,"2026-03-01T02:03:06.999999+00:00",4242,"zoë.ó\'brien",2144,"found",72146,"web","203.0.113.7","","req-4",9,'
    'true,"' + HASH_3 + '","oidc",["reason","Ring Zoë"],["role","Installers, Admins"]]'
)
REVIEW_TEXT = (
    '[1,"2026-03-01T02:03:04.500000+00:00",4242,"zoë.ó\'brien","export",{"outcome":"found","project":2143},'
    '12,"203.0.113.7","req-9","' + ZEROS + '"]'
)


@pytest.mark.parametrize(
    ("event", "text", "digest"),
    [(EVENT_1, TEXT_1, HASH_1), (EVENT_2, TEXT_2, HASH_2), (EVENT_3, TEXT_3, HASH_3), (EVENT_4, TEXT_4, HASH_4)],
    ids=["reason and non-ASCII", "Brisbane time, whole second", "reason without sign-in method", "role"],
)
def test_a_lookup_event_hashes_to_its_known_text_and_digest(event, text, digest):
    assert chain.canonical_json(chain.lookup_hashed_values(event)) == text
    assert hashlib.sha256(text.encode()).hexdigest() == digest
    assert chain.lookup_hash(event) == digest


def test_a_review_record_hashes_to_its_known_text_and_digest():
    assert chain.canonical_json([REVIEW[name] for name in chain.REVIEW_FIELDS]) == REVIEW_TEXT
    assert chain.review_hash(REVIEW) == REVIEW_HASH


@pytest.mark.parametrize(
    "change",
    [
        {"reason": "another reason"},
        {"reason": None},
        {"auth_method": "oidc"},
        {"username": "zoe.o'brien"},
        {"created_at": datetime(2026, 3, 1, 2, 3, 4, 123457, tzinfo=UTC)},
        {"cache_hit": True},
        {"role": "Sales"},
    ],
    ids=["reason", "reason removed", "sign-in method", "name without accents", "one microsecond", "cache hit", "role"],
)
def test_every_hashed_value_changes_the_digest(change):
    assert chain.lookup_hash({**EVENT_1, **change}) != HASH_1


def test_rows_stored_with_known_hashes_verify_on_this_database(db, django_user_model):
    """Rows as an earlier version wrote them, read back with this database's time precision."""
    django_user_model.objects.create(pk=4242, username=USERNAME)
    for event, digest in ((EVENT_1, HASH_1), (EVENT_2, HASH_2), (EVENT_3, HASH_3), (EVENT_4, HASH_4)):
        LookupEvent(**event, hash=digest).save(force_insert=True)
    HistoryReview(**REVIEW, hash=REVIEW_HASH).save(force_insert=True)

    stored = list(LookupEvent.objects.order_by("sequence"))
    assert [event.created_at for event in stored] == [e["created_at"] for e in (EVENT_1, EVENT_2, EVENT_3, EVENT_4)]
    assert [heads.hash_of(event) for event in stored] == [HASH_1, HASH_2, HASH_3, HASH_4]
    assert heads.review_hash_of(HistoryReview.objects.get()) == REVIEW_HASH
    assert verify() == "OK: 4 events and 1 review record verified"


@pytest.mark.parametrize(
    ("event", "digest"), [(EVENT_1, HASH_1), (EVENT_2, HASH_2), (EVENT_3, HASH_3), (EVENT_4, HASH_4)],
    ids=["reason and non-ASCII", "Brisbane time, whole second", "reason without sign-in method", "role"],
)  # fmt: skip
def test_the_database_hashes_a_lookup_event_to_its_known_digest(db, event, digest):
    """PostgreSQL's append hashes in SQL, from the pieces it encodes before and under the chain's lock."""
    if connection.vendor != "postgresql":
        pytest.skip("the SQL hash is PostgreSQL's; SQLite hashes in Python only")
    names = (*chain.LOOKUP_FIELDS, *chain.LOOKUP_LATER_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT customers_lookupevent_hash(%s, %s, %s, %s, %s, %s, %s, %s, %s::inet, "
            "%s, %s, %s, %s, %s, %s, %s, %s)",
            [event.get(name) for name in names],
        )
        assert cursor.fetchone()[0] == digest


def test_the_database_hashes_the_review_record_to_its_known_digest(db):
    if connection.vendor != "postgresql":
        pytest.skip("the SQL hash is PostgreSQL's; SQLite hashes in Python only")
    values = [json.dumps(REVIEW[name]) if name == "detail" else REVIEW[name] for name in chain.REVIEW_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT customers_historyreview_hash(%s, %s, %s, %s, %s, %s::jsonb, %s, %s::inet, %s, %s)", values
        )
        assert cursor.fetchone()[0] == REVIEW_HASH
