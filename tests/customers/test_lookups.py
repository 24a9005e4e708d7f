"""The lookup service: the only way to customer data, and always audited."""

import logging

import pytest
from django.db import DatabaseError, InterfaceError

from customers import lookups
from customers.audit import log as audit_log
from customers.lookups import look_up_customer
from customers.models import Channel, LookupEvent
from customers.outcomes import Outcome

pytestmark = pytest.mark.django_db


def test_it_returns_the_customer_and_writes_one_audit_row(sales_user, portal_upstream):
    result = look_up_customer(user=sales_user, project_id=2143, ip="10.1.2.3", request_id="req-1", user_agent="UA")

    assert result.found and result.customer.full_name == "Judy Matherson"
    event = LookupEvent.objects.get()
    assert (event.username, event.project_id, event.outcome, event.customer_id) == ("sam.sales", 2143, "found", 79298)
    assert (event.channel, event.ip, event.request_id, event.user_agent) == ("web", "10.1.2.3", "req-1", "UA")
    assert event.cache_hit is False
    assert result.event == event


@pytest.mark.parametrize(
    ("project_id", "outcome"),
    [
        (9404, Outcome.PROJECT_NOT_FOUND),
        (9405, Outcome.NO_CUSTOMER),
        (9403, Outcome.UPSTREAM_NOT_AUTHORISED),
        (9401, Outcome.API_KEY_INVALID),
        (9400, Outcome.INVALID_PARAMETERS),
        (9500, Outcome.UPSTREAM_ERROR),
        (9503, Outcome.UPSTREAM_UNAVAILABLE),
    ],
)
def test_it_audits_a_failed_lookup_with_its_outcome(sales_user, project_id, outcome):
    result = look_up_customer(user=sales_user, project_id=project_id)

    assert result.outcome == outcome and result.customer is None and result.message
    event = LookupEvent.objects.get()
    assert (event.outcome, event.customer_id, event.project_id) == (outcome, None, project_id)


@pytest.mark.parametrize("bad", [0, -1, 2**32, True, "2143", None, 1.5])
def test_it_rejects_an_invalid_project_id_without_audit_or_upstream_call(sales_user, portal_upstream, bad):
    before = portal_upstream.total_calls()
    with pytest.raises(lookups.InvalidProjectId):
        look_up_customer(user=sales_user, project_id=bad)
    assert not LookupEvent.objects.exists()
    assert portal_upstream.total_calls() == before


def test_it_refuses_a_user_without_a_role_and_audits_the_attempt(no_role_user, portal_upstream):
    before = portal_upstream.calls(2143)
    with pytest.raises(lookups.NotPermitted):
        look_up_customer(user=no_role_user, project_id=2143)
    assert portal_upstream.calls(2143) == before
    assert LookupEvent.objects.get().outcome == Outcome.NOT_AUTHORISED


def test_every_role_may_look_up(sales_user, installer_user, admin_user_role):
    for user in (sales_user, installer_user, admin_user_role):
        assert look_up_customer(user=user, project_id=2143).found
    assert LookupEvent.objects.filter(outcome="found").count() == 3


def test_it_answers_a_repeat_from_the_cache_and_still_audits_it(sales_user, installer_user, portal_upstream):
    before = portal_upstream.calls(2144)
    first = look_up_customer(user=sales_user, project_id=2144)
    second = look_up_customer(user=installer_user, project_id=2144)

    assert portal_upstream.calls(2144) == before + 1
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.customer == first.customer
    assert list(LookupEvent.objects.order_by("id").values_list("username", "cache_hit")) == [
        ("sam.sales", False),
        ("ivy.installer", True),
    ]


def test_refresh_bypasses_the_cache(sales_user, portal_upstream):
    before = portal_upstream.calls(2144)
    look_up_customer(user=sales_user, project_id=2144)
    refreshed = look_up_customer(user=sales_user, project_id=2144, refresh=True)
    assert refreshed.cache_hit is False
    assert portal_upstream.calls(2144) == before + 2


def test_a_zero_cache_time_disables_the_cache(settings, sales_user, portal_upstream):
    settings.LOOKUP_CACHE_SECONDS = 0
    before = portal_upstream.calls(2144)
    look_up_customer(user=sales_user, project_id=2144)
    look_up_customer(user=sales_user, project_id=2144)
    assert portal_upstream.calls(2144) == before + 2


def test_errors_are_not_cached(sales_user, portal_upstream):
    before = portal_upstream.calls(9503)
    look_up_customer(user=sales_user, project_id=9503)
    look_up_customer(user=sales_user, project_id=9503)
    assert portal_upstream.calls(9503) == before + 2 * 3  # each with its two retries


def test_it_rate_limits_per_user_and_audits_the_refusal(settings, sales_user, installer_user, portal_upstream):
    settings.LOOKUP_RATE_LIMIT = (3, 60)
    outcomes = [look_up_customer(user=sales_user, project_id=1001 + i).outcome for i in range(5)]

    assert outcomes == ["found"] * 3 + ["rate_limited"] * 2
    assert portal_upstream.calls(1004) == portal_upstream.calls(1005) == 0
    limited = look_up_customer(user=sales_user, project_id=2143)
    assert "more than 3 lookups in a minute" in limited.message
    assert LookupEvent.objects.filter(outcome="rate_limited", username="sam.sales").count() == 3
    # Another user has a budget of their own.
    assert look_up_customer(user=installer_user, project_id=2143).found


@pytest.mark.parametrize(
    "failure",
    [DatabaseError("disk full"), InterfaceError("connection already closed")],
    ids=lambda failure: type(failure).__name__,
)
def test_it_withholds_the_customer_when_the_audit_row_cannot_be_written(sales_user, monkeypatch, failure):
    def broken_record(**fields):
        raise failure

    monkeypatch.setattr(audit_log, "record_lookup", broken_record)
    with pytest.raises(lookups.AuditUnavailable) as raised:
        look_up_customer(user=sales_user, project_id=2143)
    assert "Judy" not in str(raised.value)
    assert raised.value.__context__ is None or raised.value.__suppress_context__


def test_it_records_the_channel(sales_user):
    look_up_customer(user=sales_user, project_id=2143, channel=Channel.CLI)
    assert LookupEvent.objects.get().channel == "cli"


def test_it_keeps_working_when_the_cache_is_down(settings, sales_user, portal_upstream, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "solarproof_portal.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }
    results = [look_up_customer(user=sales_user, project_id=2143) for _ in range(3)]
    assert all(result.found for result in results)
    assert list(LookupEvent.objects.values_list("outcome", flat=True)) == ["found"] * 3
    # Told once, when its circuit opened, not once per lookup or per cache call.
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.levelno >= logging.WARNING] == [
        "The cache (Redis) is unavailable"
    ]
