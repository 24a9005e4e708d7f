"""customers/upstream/guard.py: Solar Proof's circuit breaker and bulkhead, through the
lookup service against real servers on loopback (the sandbox, and a TCP server that
accepts and never answers)."""

import logging
import re
import threading
import time

import pytest

from customers.lookups import look_up_customer
from customers.models import LookupEvent
from customers.outcomes import Outcome
from customers.upstream import guard
from tests.support.processes import BlackHole

pytestmark = pytest.mark.django_db


@pytest.fixture
def hung_solar_proof(settings):
    with BlackHole() as hole:
        settings.SOLARPROOF_API_URL = hole.url
        settings.SOLARPROOF_TIMEOUT = 0.3
        settings.SOLARPROOF_CIRCUIT_FAILURES = 2
        settings.LOOKUP_CACHE_SECONDS = 0
        yield hole


def outage_lines(caplog):
    return [record for record in caplog.records if record.name == "solarproof_portal.circuits"]


def test_it_answers_at_once_saying_when_solar_proof_was_last_tried_once_the_circuit_opens(
    sales_user, hung_solar_proof, caplog
):
    caplog.set_level(logging.INFO)
    first = [look_up_customer(user=sales_user, project_id=2143) for _ in range(2)]
    connections_when_opened = hung_solar_proof.accepted
    later = [look_up_customer(user=sales_user, project_id=2143) for _ in range(5)]

    assert all(result.outcome == Outcome.UPSTREAM_UNAVAILABLE for result in first + later)
    assert hung_solar_proof.accepted == connections_when_opened  # Solar Proof was not asked again
    assert re.fullmatch(
        r"Solar Proof was unavailable\. It has stopped answering: the portal last tried it at \d\d:\d\d:\d\d and "
        r"tries again every 30 seconds\. Try again in a minute\.",
        later[0].message,
    )
    # Every lookup audited with its real outcome.
    assert list(LookupEvent.objects.values_list("outcome", flat=True)) == [Outcome.UPSTREAM_UNAVAILABLE] * 7
    lines = outage_lines(caplog)
    assert [(line.levelname, line.getMessage().split(":")[0]) for line in lines] == [
        ("WARNING", "Solar Proof is unavailable")
    ]
    assert "2 calls in a row got no answer (last: timed out" in lines[0].getMessage()
    assert "Traceback" not in caplog.text and not any(record.exc_info for record in caplog.records)
    assert sum("Solar Proof lookup failed" in record.getMessage() for record in caplog.records) == 2


def test_a_trial_call_that_gets_an_answer_closes_the_circuit_and_says_how_long_it_was_gone(
    sales_user, hung_solar_proof, portal_upstream, settings, caplog
):
    settings.SOLARPROOF_CIRCUIT_RESET_SECONDS = 0.2
    caplog.set_level(logging.INFO)
    for _ in range(3):
        look_up_customer(user=sales_user, project_id=2143)
    assert guard.breaker().is_open

    settings.SOLARPROOF_API_URL = portal_upstream.url  # Solar Proof is back
    time.sleep(0.25)
    result = look_up_customer(user=sales_user, project_id=2143)

    assert result.found and not guard.breaker().is_open
    back = outage_lines(caplog)[-1]
    assert back.levelname == "INFO"
    assert re.fullmatch(
        r"Solar Proof is back after \d+ s; 3 calls were turned away or failed while it was gone", back.getMessage()
    )


@pytest.mark.usefixtures("committed_db")
def test_half_open_lets_one_trial_call_through_and_turns_the_rest_away(sales_user, hung_solar_proof, settings):
    settings.SOLARPROOF_CIRCUIT_RESET_SECONDS = 0.1
    for _ in range(2):
        look_up_customer(user=sales_user, project_id=2143)
    time.sleep(0.15)
    before = hung_solar_proof.accepted
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(look_up_customer(user=sales_user, project_id=2143)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert hung_solar_proof.accepted - before == 1
    assert [result.outcome for result in results] == [Outcome.UPSTREAM_UNAVAILABLE] * 4
    assert sum("last tried it at" in result.message for result in results) == 3


def test_answers_that_are_not_customers_do_not_open_the_circuit(sales_user, settings):
    settings.SOLARPROOF_CIRCUIT_FAILURES = 2
    outcomes = [look_up_customer(user=sales_user, project_id=9404).outcome for _ in range(3)]

    assert outcomes == [Outcome.PROJECT_NOT_FOUND] * 3
    assert not guard.breaker().is_open


@pytest.mark.usefixtures("committed_db")
def test_the_bulkhead_turns_a_lookup_away_when_every_slot_waits_on_solar_proof(sales_user, hung_solar_proof, settings):
    settings.SOLARPROOF_MAX_CONCURRENT = 1
    settings.SOLARPROOF_CIRCUIT_FAILURES = 10
    holder = threading.Thread(target=look_up_customer, kwargs={"user": sales_user, "project_id": 2143})
    holder.start()
    while hung_solar_proof.accepted == 0:
        time.sleep(0.01)
    turned_away = look_up_customer(user=sales_user, project_id=2144)
    holder.join()

    assert turned_away.outcome == Outcome.UPSTREAM_UNAVAILABLE
    assert "already waiting on it for other lookups" in turned_away.message
    assert hung_solar_proof.accepted == 1  # the second lookup never reached Solar Proof
    assert LookupEvent.objects.filter(outcome=Outcome.UPSTREAM_UNAVAILABLE).count() == 2
    assert guard.bulkhead.in_use == 0
