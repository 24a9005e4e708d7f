"""The lookup history as an admin and an auditor see it."""

import csv
import io
import re
import tracemalloc
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from customers.audit import heads, prune
from customers.audit import log as audit_log
from customers.history import queries as history
from customers.models import HistoryReview, LookupEvent
from tests.support.pages import text

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def add_event(user, project_id: int, *, outcome: str = "found", at: datetime | None = None, **fields) -> LookupEvent:
    """An audit row written through the real chain, at a chosen time."""
    event = audit_log.record_lookup(
        user=user, project_id=project_id, outcome=outcome, channel="web", customer_id=None, **fields
    )
    if at is None:
        return event
    # Backdating needs the trigger-free path the tests own: rewrite the row and re-chain.
    return _backdate(event, at)


def _backdate(event: LookupEvent, at: datetime) -> LookupEvent:
    from django.db import connection

    with prune.open_gate(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM customers_lookupevent WHERE id = %s", [event.pk])
    event = LookupEvent(**{f.attname: getattr(event, f.attname) for f in LookupEvent._meta.concrete_fields})
    event.created_at = at
    event.hash = heads.hash_of(event)
    event.save(force_insert=True)
    return event


@pytest.fixture
def admin_client(client, admin_user_role):
    client.force_login(admin_user_role)
    return client


@pytest.fixture
def people(make_user):
    return {"sam": make_user("sam", "Sales"), "ivy": make_user("ivy", "Installers"), "al": make_user("al", "Admins")}


def rows(response) -> list[list[str]]:
    body = response.content.decode()
    table = re.search(r'<table class="history">.*?<tbody>(.*?)</tbody>', body, re.S)
    if not table:
        return []
    return [
        [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", table[1], re.S)
    ]


@pytest.mark.parametrize("role", ["Sales", "Installers", None])
def test_only_admins_may_review_history(client, make_user, role):
    client.force_login(make_user("someone", role))
    for url in ("/history/", "/history/export.csv", "/history/reviews/"):
        assert client.get(url).status_code == 403
    assert not HistoryReview.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in ("/history/", "/history/export.csv", "/history/reviews/"):
        assert client.get(url)["Location"].startswith("/accounts/login/")


def test_history_lists_lookups_newest_first(admin_client, people):
    for project_id in (2143, 2144, 9404):
        add_event(people["sam"], project_id)
    table = rows(admin_client.get("/history/"))
    assert [row[3] for row in table] == ["9404", "2144", "2143"]
    assert [row[0] for row in table] == ["3", "2", "1"]


def test_history_shows_how_each_user_had_signed_in(admin_client, people):
    add_event(people["sam"], 2143, auth_method="oidc")
    add_event(people["sam"], 2144, auth_method="local")
    add_event(people["sam"], 2145)  # the command line, or before sign-in methods were recorded
    assert [row[7] for row in rows(admin_client.get("/history/"))] == ["", "local", "oidc"]


def test_each_filter_and_their_combinations(admin_client, people):
    now = timezone.now()
    add_event(people["sam"], 2143, at=now - timedelta(days=40))
    add_event(people["sam"], 2143, outcome="project_not_found", at=now - timedelta(days=3))
    add_event(people["ivy"], 2143, at=now - timedelta(days=2))
    add_event(people["ivy"], 1001, at=now - timedelta(days=1))
    add_event(people["sam"], 1001)

    def projects(query: dict) -> list[str]:
        return [row[3] + "/" + row[2] for row in rows(admin_client.get("/history/", query))]

    assert projects({"user": "ivy"}) == ["1001/ivy", "2143/ivy"]
    assert projects({"project": "2143"}) == ["2143/ivy", "2143/sam", "2143/sam"]
    assert projects({"outcome": "project_not_found"}) == ["2143/sam"]
    assert projects({"user": "sam", "project": "2143"}) == ["2143/sam", "2143/sam"]
    week_ago = (timezone.localdate() - timedelta(days=7)).isoformat()
    assert projects({"user": "sam", "from": week_ago}) == ["1001/sam", "2143/sam"]
    two_days_ago = (timezone.localdate() - timedelta(days=2)).isoformat()
    assert projects({"from": two_days_ago, "to": two_days_ago}) == ["2143/ivy"]
    assert projects({"project": "2143", "outcome": "found", "to": two_days_ago}) == ["2143/ivy", "2143/sam"]


def test_per_project_and_per_user_views_are_a_click_away(admin_client, people):
    add_event(people["sam"], 2143)
    page = admin_client.get("/history/").content.decode()
    assert 'href="?project=2143"' in page and 'href="?user=sam"' in page
    assert "Everyone who looked at project 2143" in text(admin_client.get("/history/?project=2143"))
    assert "Lookups by sam" in text(admin_client.get("/history/?user=sam"))


def test_bad_filters_get_a_clear_message(admin_client):
    response = admin_client.get("/history/", {"project": "abc", "from": "2026-02-31", "outcome": "hacked"})
    assert response.status_code == 400
    page = text(response)
    assert "A project ID is a whole number" in page and "Enter a valid date." in page
    assert "Select a valid choice." in page
    response = admin_client.get("/history/", {"from": "2026-05-02", "to": "2026-05-01"})
    assert "“To” must be on or after “From”." in text(response)


@pytest.mark.parametrize("query", [{"from": "0001-01-01"}, {"to": "9999-12-31"}])
def test_dates_outside_the_logs_lifetime_get_a_clear_message_on_the_page_and_the_export(admin_client, query):
    response = admin_client.get("/history/", query)
    assert response.status_code == 400
    assert "Pick a date between 2000 and 2199." in text(response)
    export = admin_client.get("/history/export.csv", query)
    assert export.status_code == 400
    assert "Pick a date between 2000 and 2199." in export.content.decode()


def test_filter_changes_swap_only_the_table(admin_client, people):
    add_event(people["sam"], 2143)
    response = admin_client.get("/history/", {"user": "sam"}, **HTMX)
    body = response.content.decode()
    assert "<html" not in body and "Lookups by sam" in body and "lookups today" not in body
    assert "HX-Request" in response["Vary"]


def test_pages_follow_the_keyset_without_counting(admin_client, people, django_assert_max_num_queries):
    for index in range(history.PAGE_SIZE + 5):
        add_event(people["sam"], 1000 + index)
    first = admin_client.get("/history/", {"user": "sam"})
    older_link = re.search(r'href="\?([^"]*before=(\d+))"', first.content.decode())
    assert older_link and "user=sam" in older_link[1]
    assert len(rows(first)) == history.PAGE_SIZE
    second = admin_client.get("/history/", {"user": "sam", "before": older_link[2]})
    assert [row[0] for row in rows(second)] == ["5", "4", "3", "2", "1"]
    newer = re.search(r'href="\?([^"]*after=(\d+))"', second.content.decode())
    back = admin_client.get("/history/", {"user": "sam", "after": newer[2]})
    assert rows(back)[0][0] == str(history.PAGE_SIZE + 5)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        admin_client.get("/history/", {"user": "sam"}, **HTMX)
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


def test_the_summary_counts_days_busiest_users_and_flags_unusual_activity(settings, admin_client, people):
    settings.AUDIT_ALERT_DISTINCT_PROJECTS_PER_HOUR = 3
    now = timezone.localtime()
    midday = now.replace(hour=12, minute=0, second=0, microsecond=0)
    for project_id in range(1001, 1006):
        add_event(people["ivy"], project_id, at=midday - timedelta(days=1))
    night = (now - timedelta(days=2)).replace(hour=2, minute=30, second=0, microsecond=0)
    add_event(people["sam"], 2143, at=night)
    add_event(people["sam"], 2144, at=timezone.localtime().replace(hour=10, minute=0))

    summary = history._compute_summary()
    assert summary.today == 1 and summary.last_7_days == 7
    assert summary.busiest[0] == ("ivy", 5)
    flags = {flag.username: flag.reason for flag in summary.unusual}
    assert flags["ivy"] == "5 different projects in one hour (alert above 3)"
    assert flags["sam"] == "1 lookup outside 06:00–20:00"
    assert len(summary.per_day) == 30 and sum(count for _, count in summary.per_day) == 7

    page = admin_client.get("/history/").content.decode()
    assert "<svg" in page and 'role="img"' in page
    assert "Lookups per day as a table" in page


def test_every_view_and_export_is_recorded_as_a_review(admin_client, people):
    add_event(people["sam"], 2143)
    admin_client.get("/history/", {"project": "2143"})
    b"".join(admin_client.get("/history/export.csv", {"user": "sam"}).streaming_content)
    reviews = list(HistoryReview.objects.order_by("sequence").values("username", "kind", "detail", "rows"))
    assert reviews == [
        {"username": "ada.admin", "kind": "view", "detail": {"project": 2143}, "rows": 1},
        {"username": "ada.admin", "kind": "export", "detail": {"user": "sam"}, "rows": 1},
    ]
    page = text(admin_client.get("/history/reviews/"))
    assert "Exported CSV" in page and "user=sam" in page and "project=2143" in page
    assert LookupEvent.objects.count() == 1  # reviewing is not a lookup


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_export_has_the_documented_columns_and_iso_times(admin_client, people):
    event = add_event(people["sam"], 2143, ip="192.0.2.5", request_id="req-9", auth_method="oidc")
    response = admin_client.get("/history/export.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="lookup-history-')
    header, row = _csv(response)
    assert header == [
        "sequence",
        "time",
        "username",
        "project_id",
        "outcome",
        "customer_id",
        "channel",
        "ip",
        "request_id",
        "duration_ms",
        "auth_method",
    ]
    assert row[0] == "1" and row[2:] == ["sam", "2143", "found", "", "web", "192.0.2.5", "req-9", "0", "oidc"]
    assert datetime.fromisoformat(row[1]) == event.created_at
    assert row[1].endswith("+10:00")  # Brisbane, with its offset


FIRST_TEN = ["sequence", "time", "username", "project_id", "outcome", "customer_id", "channel", "ip", "request_id",
             "duration_ms"]  # fmt: skip


@pytest.mark.parametrize("setting", ["optional", "required"])
def test_the_export_adds_the_reason_at_the_end_only_while_reasons_are_asked(settings, admin_client, people, setting):
    add_event(people["sam"], 2143, reason="Customer called", auth_method="local")
    add_event(people["sam"], 2144, reason="=HYPERLINK(1)")
    settings.LOOKUP_REASON = setting
    header, first, second = _csv(admin_client.get("/history/export.csv"))
    assert header == [*FIRST_TEN, "auth_method", "reason"]
    assert (first[2:4], first[10:]) == (["sam", "2143"], ["local", "Customer called"])
    assert second[10:] == ["", "'=HYPERLINK(1)"]
    settings.LOOKUP_REASON = "off"
    header, first, _ = _csv(admin_client.get("/history/export.csv"))
    assert header == [*FIRST_TEN, "auth_method"] and len(first) == 11


def test_the_export_neutralises_spreadsheet_formulas(admin_client, make_user):
    for name in ("=cmd|' /C calc'!A0", "+61sum", "-2+3", "@SUM(A1)"):
        add_event(make_user(name, "Sales"), 2143)
    names = [row[2] for row in _csv(admin_client.get("/history/export.csv"))[1:]]
    assert names == ["'=cmd|' /C calc'!A0", "'+61sum", "'-2+3", "'@SUM(A1)"]


def test_the_export_applies_the_filters(admin_client, people):
    add_event(people["sam"], 2143)
    add_event(people["ivy"], 2143)
    add_event(people["ivy"], 1001)
    exported = _csv(admin_client.get("/history/export.csv", {"user": "ivy", "project": "2143"}))
    assert [row[2:4] for row in exported[1:]] == [["ivy", "2143"]]


def _export_peak(client, **filters) -> tuple[int, int, int]:
    """Lines, bytes and the peak Python memory while streaming an export."""
    tracemalloc.start()
    response = client.get("/history/export.csv", filters)
    total = lines = 0
    for chunk in response.streaming_content:
        total += len(chunk)
        lines += chunk.count(b"\n")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return lines, total, peak


def test_a_large_export_streams_in_constant_memory(admin_client, people):
    _bulk_chain([people["ivy"]] * 6_000 + [people["sam"]] * 18_000)
    part = _export_peak(admin_client, user="ivy")
    whole = _export_peak(admin_client)
    assert (part[0], whole[0]) == (6_001, 24_001) and whole[1] > 1_500_000
    # Four times the rows, the same memory: only one fetched chunk is held at a time.
    assert whole[2] < part[2] * 1.3 + 200_000, (part, whole)


def _bulk_chain(users: list) -> None:
    """Many honest events quickly, one per user given: the chain computed here, written in bulk."""
    prev, start = heads.GENESIS, timezone.now() - timedelta(hours=1)
    events = []
    for sequence, user in enumerate(users, start=1):
        event = LookupEvent(
            sequence=sequence,
            created_at=start + timedelta(microseconds=sequence * 100),
            user=user,
            username=user.username,
            project_id=1000 + sequence % 500,
            outcome="found",
            channel="web",
            customer_id=70000 + sequence,
            ip="192.0.2.1",
            request_id=f"r{sequence}",
            duration_ms=5,
            prev_hash=prev,
        )
        event.hash = prev = heads.hash_of(event)
        events.append(event)
    LookupEvent.objects.bulk_create(events, batch_size=2000)


def test_it_shows_outcomes_in_staff_words_and_exports_the_outcome_words(admin_client, people):
    add_event(people["sam"], 9503, outcome="upstream_unavailable")
    add_event(people["ivy"], 9401, outcome="api_key_invalid")
    page = admin_client.get("/history/", {"outcome": "upstream_unavailable"})
    assert [row[4] for row in rows(page)] == ["Solar Proof was unavailable"]
    assert "outcome: Solar Proof was unavailable" in text(page)
    assert '<option value="api_key_invalid">The portal&#x27;s Solar Proof key was refused' in page.content.decode()
    table = text(admin_client.get("/history/"))
    assert "upstream_unavailable" not in table and "Upstream unavailable" not in table
    export = b"".join(admin_client.get("/history/export.csv").streaming_content).decode()
    assert ",upstream_unavailable," in export and ",api_key_invalid," in export
    assert "was unavailable" not in export


def test_it_keeps_the_outcome_words_in_the_admin(client, django_user_model, people):
    add_event(people["sam"], 9503, outcome="upstream_unavailable")
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(boss)

    def cells(url: str) -> list[str]:
        return re.findall(r'<td class="field-outcome_word">([^<]*)</td>', client.get(url).content.decode())

    assert cells("/admin/customers/lookupevent/") == ["upstream_unavailable"]
    assert cells("/admin/customers/lookupevent/?outcome=upstream_unavailable") == ["upstream_unavailable"]
    assert cells("/admin/customers/lookupevent/?outcome=api_key_invalid") == []
    assert "was unavailable" not in client.get("/admin/customers/lookupevent/").content.decode()
    event = LookupEvent.objects.get()
    detail = client.get(f"/admin/customers/lookupevent/{event.pk}/change/").content.decode()
    assert "upstream_unavailable" in detail and "was unavailable" not in detail


def test_the_export_link_carries_the_filters_of_the_rows_shown_after_an_htmx_filter(admin_client, people):
    add_event(people["sam"], 2143)
    add_event(people["ivy"], 2143)
    partial = admin_client.get("/history/", {"user": " sam ", "project": "#2143", "outcome": ""}, **HTMX)

    link = re.search(r'<a [^>]*id="export-link"[^>]*>', partial.content.decode())
    assert link and 'href="/history/export.csv?user=sam&amp;project=2143"' in link[0]
    exported = _csv(admin_client.get("/history/export.csv?user=sam&project=2143"))
    assert [row[2] for row in exported[1:]] == ["sam"]
    assert HistoryReview.objects.filter(kind="export").get().detail == {"user": "sam", "project": 2143}


def test_the_unfiltered_export_link_has_no_empty_query(admin_client, people):
    add_event(people["sam"], 2143)
    assert 'href="/history/export.csv"' in admin_client.get("/history/").content.decode()
