"""The run-sheet service: every job through the audited lookup, side by side, in order.

The lookups run in the process's pool of sheet threads, so these tests commit
(committed_db), as a running portal does."""

import threading
import time

import pytest
from django.db import connections
from django.db.backends.signals import connection_created

from customers import lookups
from customers.models import LookupEvent
from customers.outcomes import Outcome
from customers.run_sheets import service as run_sheets

pytestmark = pytest.mark.usefixtures("committed_db")

TEN_FOUND = [2143, 2144, 2145, 2146, 2148, 1001, 1002, 1003, 1004, 1005]


def sheet(user, project_ids, **kwargs):
    return run_sheets.look_up_run_sheet(user=user, project_ids=project_ids, request_id="sheet-req-1", **kwargs)


def test_it_asks_solar_proof_for_the_jobs_side_by_side_up_to_the_pools_size(installer_user, portal_upstream, settings):
    settings.LOOKUP_CACHE_SECONDS = 0
    portal_upstream.latency = 0.3  # long enough for every job the pool holds to be in flight at once
    try:
        sheet(installer_user, [2143])  # the pool's threads started, as in a running portal
        portal_upstream.most_at_once = 0
        entries = sheet(installer_user, TEN_FOUND)
    finally:
        portal_upstream.latency = 0
    assert [entry.result.outcome for entry in entries] == [Outcome.FOUND] * 10
    # One after another, ten answers would each wait for the last: side by side, as many
    # as the sheet pool and the bulkhead on Solar Proof calls allow (not a timing target).
    slots = min(len(TEN_FOUND), run_sheets.sheet_pool()._max_workers, settings.SOLARPROOF_MAX_CONCURRENT)
    assert slots > 1
    assert portal_upstream.most_at_once == slots


def test_it_keeps_the_whole_sheet_inside_one_time_budget_when_a_project_hangs(installer_user, settings):
    settings.SOLARPROOF_TIMEOUT = 0.6
    started = time.monotonic()
    entries = sheet(installer_user, [2143, 9599, 2144])
    elapsed = time.monotonic() - started

    assert [entry.project_id for entry in entries] == [2143, 9599, 2144]
    assert entries[1].result.outcome == Outcome.UPSTREAM_UNAVAILABLE
    assert entries[0].result.found and entries[2].result.found
    # One budget for the sheet, not one per project: the hung project's wait is the sheet's.
    assert 0.5 < elapsed < 1.2, f"the sheet took {elapsed:.3f} s"


def test_it_writes_one_audit_row_per_project_with_the_sheets_request_id(installer_user):
    entries = sheet(installer_user, [2143, 9404, 2144], ip="10.0.0.7", user_agent="Tablet")

    assert [entry.project_id for entry in entries] == [2143, 9404, 2144]
    events = LookupEvent.objects.order_by("sequence")
    assert sorted(event.project_id for event in events) == [2143, 2144, 9404]
    assert {(event.request_id, event.username, event.ip, event.user_agent, event.channel) for event in events} == {
        ("sheet-req-1", "ivy.installer", "10.0.0.7", "Tablet", "web")
    }
    assert {event.project_id: event.outcome for event in events} == {
        2143: "found",
        9404: "project_not_found",
        2144: "found",
    }
    assert entries[0].result.event.project_id == 2143  # each result carries its own row


def test_it_keeps_a_failing_project_in_its_place_and_the_rest_unharmed(installer_user):
    entries = sheet(installer_user, [2143, 9500, 9405, 2144])

    assert [entry.project_id for entry in entries] == [2143, 9500, 9405, 2144]
    assert entries[0].result.customer.full_name == "Judy Matherson"
    assert entries[1].result.outcome == Outcome.UPSTREAM_ERROR and entries[1].result.message
    assert entries[2].result.outcome == Outcome.NO_CUSTOMER and "no customer" in entries[2].result.message
    assert entries[3].result.customer.full_name == "Marcus Aurelio"


def test_it_keeps_even_an_error_of_ours_to_its_own_project(installer_user, monkeypatch):
    real = lookups._fetch

    def broken_for_2144(project_id, **kwargs):
        if project_id == 2144:
            raise RuntimeError("a bug in the portal")
        return real(project_id, **kwargs)

    monkeypatch.setattr(lookups, "_fetch", broken_for_2144)
    entries = sheet(installer_user, [2143, 2144, 2145])

    assert entries[1].result is None and entries[1].problem.startswith("This project could not be looked up")
    assert entries[0].result.found and entries[2].result.found
    assert sorted(LookupEvent.objects.values_list("project_id", flat=True)) == [2143, 2145]


def test_it_counts_the_rate_limit_once_per_project(installer_user, settings):
    settings.LOOKUP_RATE_LIMIT = (3, 86400)  # a day: a minute's window could turn over between the sheet and the lookup
    entries = sheet(installer_user, [2143, 2144, 2145, 2146, 2148])

    outcomes = sorted(entry.result.outcome for entry in entries)
    assert outcomes.count(Outcome.FOUND) == 3 and outcomes.count(Outcome.RATE_LIMITED) == 2
    assert LookupEvent.objects.filter(outcome="rate_limited").count() == 2
    assert LookupEvent.objects.count() == 5
    # The limit is the user's, across sheets and single lookups alike.
    assert lookups.look_up_customer(user=installer_user, project_id=2143).outcome == Outcome.RATE_LIMITED


def test_it_refuses_a_user_without_a_role_and_audits_each_project(no_role_user, portal_upstream):
    before = portal_upstream.total_calls()
    with pytest.raises(lookups.NotPermitted):
        sheet(no_role_user, [2143, 2144])
    assert sorted(LookupEvent.objects.values_list("project_id", "outcome")) == [
        (2143, "not_authorised"),
        (2144, "not_authorised"),
    ]
    assert portal_upstream.total_calls() == before


@pytest.mark.parametrize("project_ids", [[], list(range(1, 22)), [2143, 0], [2143, 2**32]])
def test_it_refuses_an_empty_oversized_or_invalid_sheet_before_any_lookup(installer_user, project_ids):
    with pytest.raises(lookups.InvalidProjectId):
        sheet(installer_user, project_ids)
    assert not LookupEvent.objects.exists()


def test_its_threads_open_no_database_connection_and_each_row_is_written_by_the_request(installer_user):
    opened = []

    def remember(sender, connection, **kwargs):
        opened.append(threading.current_thread().name)

    connection_created.connect(remember)
    try:
        entries = sheet(installer_user, [2143, 2144, 2145, 2146])
    finally:
        connection_created.disconnect(remember)
    assert all(entry.result.found for entry in entries)
    assert [name for name in opened if name.startswith("run-sheet")] == []
    assert LookupEvent.objects.filter(request_id="sheet-req-1").count() == 4


def test_every_sheet_shares_one_bounded_pool_and_every_job_gets_its_answer(installer_user, portal_upstream, settings):
    settings.LOOKUP_CACHE_SECONDS = 0
    pool = run_sheets.sheet_pool()
    sheets = [TEN_FOUND, TEN_FOUND[::-1], TEN_FOUND[2:], TEN_FOUND[:5]]
    results = {}

    def open_sheet(number):
        results[number] = sheet(installer_user, sheets[number])
        connections.close_all()

    threads = [threading.Thread(target=open_sheet, args=(number,)) for number in range(len(sheets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert run_sheets.sheet_pool() is pool and pool._max_workers == settings.RUN_SHEET_THREADS
    for number, project_ids in enumerate(sheets):
        assert [entry.project_id for entry in results[number]] == project_ids
        assert all(entry.result.found for entry in results[number])
    assert LookupEvent.objects.count() == sum(map(len, sheets))
    assert {name for name in (t.name for t in threading.enumerate()) if name.startswith("run-sheet")} <= {
        f"run-sheet_{n}" for n in range(settings.RUN_SHEET_THREADS)
    }


def test_it_keeps_todays_sheet_in_the_session_and_forgets_it_tomorrow(installer_user, client, settings):
    session = client.session
    assert run_sheets.add_to_todays_sheet(session, project_id=2143) == [2143]
    assert run_sheets.add_to_todays_sheet(session, project_id=2144) == [2143, 2144]
    assert run_sheets.add_to_todays_sheet(session, project_id=2143) == [2143, 2144]  # once each
    assert run_sheets.todays_projects(session) == [2143, 2144]
    session["run_sheet"] = {**session["run_sheet"], "day": "2020-01-01"}
    assert run_sheets.todays_projects(session) == []


def test_it_holds_at_most_twenty_projects_on_todays_sheet(client):
    session = client.session
    for project_id in range(1001, 1021):
        run_sheets.add_to_todays_sheet(session, project_id=project_id)
    with pytest.raises(ValueError, match="already holds 20"):
        run_sheets.add_to_todays_sheet(session, project_id=2143)
