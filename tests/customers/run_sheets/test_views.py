"""The run sheet over HTTP: the address, what each job shows, the route, keeping it on a
device, building it from result pages, and who may see it.

Its lookups run in threads, so these tests commit (committed_db)."""

import html
import re
from datetime import UTC, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from customers.forms import parse_project_list
from customers.models import HistoryReview, LookupEvent
from tests.support.pages import hrefs, text

pytestmark = pytest.mark.usefixtures("committed_db")

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def installer_client(client, installer_user):
    client.force_login(installer_user)
    return client


def route_links(page) -> list[str]:
    return [html.unescape(href) for href in hrefs(page) if "/maps/dir/" in href and "travelmode=driving" in href]


def route_stops(href: str) -> list[str]:
    query = parse_qs(urlsplit(href).query)
    waypoints = query["waypoints"][0].split("|") if "waypoints" in query else []
    return [*query.get("origin", []), *waypoints, *query["destination"]]


# --- the list of projects ----------------------------------------------------------


@pytest.mark.parametrize(
    ("pasted", "ids", "stray"),
    [
        ("2143,2144,1003", [2143, 2144, 1003], []),
        ("2143\r\n2144\r\n\r\n1003\r\n", [2143, 2144, 1003], []),
        ("2143 2144  1003", [2143, 2144, 1003], []),
        ("Project #2143\nproject id: 2144\n#1003; Project No. 1004", [2143, 2144, 1003, 1004], []),
        ("2143, 2144, 2143", [2143, 2144], []),
        ("2143 - Smith job\n2144 Jones (3 panels)", [2143, 2144], ["Smith", "job", "Jones", "(3", "panels)"]),
        ("0 99999999999 2143", [2143], ["0", "99999999999"]),
        ("abc2143", [], ["abc2143"]),
    ],
)
def test_it_reads_a_pasted_list_as_the_search_box_reads_one_id(pasted, ids, stray):
    assert parse_project_list(pasted) == (ids, stray)


def test_it_gives_the_sheet_one_address_with_the_projects_in_order(installer_client):
    response = installer_client.get("/run-sheet/", {"projects": "Project #2144\n2143 junk\n9404"})
    assert response.status_code == 302
    assert response["Location"] == "/run-sheet/?projects=2144,2143,9404"
    assert not LookupEvent.objects.exists()  # the redirect looks nothing up

    page = installer_client.get(response["Location"])
    assert page.status_code == 200
    assert "Left out, not project IDs: junk" in text(page)
    title = re.compile(r'<h2 id="job-\d+-title"><span class="job-number">(\d+)\.</span> ([^<]+)</h2>')
    names = title.findall(page.content.decode())
    assert names == [("1", "Marcus Aurelio"), ("2", "Judy Matherson"), ("3", "Project 9404")]


@pytest.mark.parametrize(
    ("projects", "message"),
    [
        ("", "Enter the project IDs of today's jobs"),
        ("Smith job", "No project ID found"),
        (",".join(str(n) for n in range(1001, 1022)), "A run sheet holds up to 20 projects; this list has 21."),
    ],
)
def test_it_explains_a_list_it_cannot_use(installer_client, projects, message):
    response = installer_client.get("/run-sheet/", {"projects": projects})
    assert response.status_code == 400
    assert message in text(response)
    assert 'aria-invalid="true"' in response.content.decode()
    assert not LookupEvent.objects.exists()


def test_the_menus_run_sheet_is_a_form_until_projects_are_added_then_the_sheet(installer_client):
    assert "Project IDs" in text(installer_client.get("/run-sheet/"))
    assert not LookupEvent.objects.exists()
    installer_client.post("/run-sheet/add/", {"project": "2143"})
    installer_client.post("/run-sheet/add/", {"project": "1003"})
    response = installer_client.get("/run-sheet/")
    assert response.status_code == 302 and response["Location"] == "/run-sheet/?projects=2143,1003"
    sheet = installer_client.get(response["Location"])
    assert "1. Judy Matherson" in text(sheet) and "2. Ava Kelly" in text(sheet)


# --- what each job shows -----------------------------------------------------------


def test_each_job_shows_what_the_installer_needs_first(installer_client):
    page = installer_client.get("/run-sheet/?projects=2144,2148")
    body = page.content.decode()
    shown = text(page)

    assert "1. Marcus Aurelio" in shown and "480 Mount Cotton Road, Capalaba, QLD, 4157" in shown
    assert "Best time to call: Weekdays 7am-3pm" in shown
    assert "Site contact: Dee (operations).<br>Loading dock at rear" in body  # line breaks kept
    assert "2. Bazza Kowalski" in shown and "Lot 12 Back Creek Road, near the old dairy" in shown
    assert "No mobile coverage past the grid. Ring from town.<br>Cattle grid: slow." in body
    # The address warning where the card shows one, and only there.
    assert shown.count("This address has no state or postcode") == 1  # on the job, before its Directions
    assert "Check this address before you drive: stop 2 (Bazza Kowalski)." in shown  # named above the route
    assert 'aria-label="Call Marcus Aurelio, phone 1, (07) 3123 4567"' in body
    assert 'aria-label="Call Bazza Kowalski, phone 1 (mobile), 0491 570 159"' in body
    assert 'aria-label="Text Bazza Kowalski, mobile, 0491 570 159"' in body
    assert "Text Marcus Aurelio" not in body  # a landline gets no Text
    assert 'aria-label="Directions to the site of Bazza Kowalski (Google Maps, opens a new tab)"' in body
    assert "tel:+61731234567" in hrefs(page) and "sms:+61491570159" in hrefs(page)


def test_a_failing_project_shows_its_own_message_in_its_place(installer_client):
    page = installer_client.get("/run-sheet/?projects=2143,9404,9503,2144")
    shown = text(page)
    assert page.status_code == 200
    assert re.search(r"1\. Judy Matherson .* 2\. Project 9404 No customer shown: Solar Proof has no project", shown)
    assert "3. Project 9503 No customer shown:" in shown
    assert "4. Marcus Aurelio" in shown


def test_hostile_data_on_the_sheet_is_shown_as_text(installer_client):
    body = installer_client.get("/run-sheet/?projects=2147").content.decode()
    assert "<script>alert" not in body and "<iframe" not in body and "<marquee" not in body
    assert "&lt;script&gt;alert(&#x27;first&#x27;)&lt;/script&gt;" in body
    assert "javascript:" not in " ".join(re.findall(r'href="([^"]*)"', body)).lower()


def test_the_sheet_shows_no_template_text(installer_client):
    # A two-line {# comment #} is text to Django's language: it used to appear on the sheet.
    page = installer_client.get("/run-sheet/?projects=2143,2144")
    shown = text(page)
    assert "After the jobs" not in shown
    assert not re.search(r"\{[{%#]|[}%#]\}", shown)


def test_the_up_and_down_controls_lead_to_the_sheet_in_the_new_order(installer_client):
    page = installer_client.get("/run-sheet/?projects=2143,2144,1003")
    body = page.content.decode()
    up = 'href="/run-sheet/?projects=2144,2143,1003#job-2144" aria-label="Move Marcus Aurelio up, to stop 1"'
    down = 'href="/run-sheet/?projects=2143,1003,2144#job-2144" aria-label="Move Marcus Aurelio down, to stop 3"'
    assert up in body and down in body
    # The ends have no move that way (hidden, for run-sheet.js to show after a move).
    assert re.search(r'href="" aria-label="Move Judy Matherson up, to stop 0" hidden', body)
    assert re.search(r'href="" aria-label="Move Ava Kelly down, to stop 4" hidden', body)


def test_a_sheet_linked_from_another_site_asks_before_looking_anything_up(installer_client, portal_upstream):
    before = portal_upstream.total_calls()
    url = "/run-sheet/?projects=2143,2144"
    for site in ("cross-site", "same-site"):
        response = installer_client.get(url, HTTP_SEC_FETCH_SITE=site)
        assert response.status_code == 200
        shown = text(response)
        assert "Project 2143, 2144" in shown and "the run sheet has not been looked up yet" in shown
        assert "Judy" not in shown and "no-store" in response["Cache-Control"]
        assert f'href="{url}"' in response.content.decode()  # the one tap: the same address
    assert not LookupEvent.objects.exists() and portal_upstream.total_calls() == before

    # A pasted list from another site is tidied first, then confirmed at its own address.
    tidied = installer_client.get("/run-sheet/?projects=2143%0A2144", HTTP_SEC_FETCH_SITE="cross-site")
    assert tidied["Location"] == url and not LookupEvent.objects.exists()

    confirmed = installer_client.get(url, HTTP_SEC_FETCH_SITE="same-origin")
    assert "1. Judy Matherson" in text(confirmed)
    assert LookupEvent.objects.count() == 2


def test_another_sites_link_cannot_put_its_words_on_the_next_page(installer_client):
    planted = "/run-sheet/?projects=2143+URGENT:+your+password+expired,+call+IT+and+read+it+out"
    tidied = installer_client.get(planted, HTTP_SEC_FETCH_SITE="cross-site")
    assert tidied.status_code == 302
    confirmation = installer_client.get(tidied["Location"], HTTP_SEC_FETCH_SITE="cross-site")
    page = installer_client.get("/run-sheet/?projects=2143")
    for response in (confirmation, page):
        assert "URGENT" not in text(response) and "password" not in text(response)


def test_a_sheet_linked_from_another_site_is_refused_without_a_role(client, no_role_user):
    client.force_login(no_role_user)
    assert client.get("/run-sheet/?projects=2143", HTTP_SEC_FETCH_SITE="cross-site").status_code == 403
    assert not LookupEvent.objects.exists()


def test_a_required_reason_is_asked_for_once_and_goes_on_every_row(installer_client, settings):
    settings.LOOKUP_REASON = "required"
    asked = installer_client.get("/run-sheet/?projects=2143,2144")
    assert asked.status_code == 400
    assert "Say why you are looking this customer up" in text(asked)
    assert not LookupEvent.objects.exists()

    given = installer_client.get("/run-sheet/", {"projects": "2143\n2144", "reason": "install_scheduled"})
    assert given["Location"] == "/run-sheet/?projects=2143,2144&reason=install_scheduled"
    page = installer_client.get(given["Location"])
    assert "1. Judy Matherson" in text(page)
    assert set(LookupEvent.objects.values_list("reason", flat=True)) == {"Install scheduled"}
    body = page.content.decode()
    assert 'href="/run-sheet/?projects=2144,2143&amp;reason=install_scheduled#job-2144"' in body  # moves keep it
    assert '<input type="hidden" name="reason" value="install_scheduled">' in body  # and so does keeping

    assert installer_client.post("/run-sheet/keep/", {"projects": "2143"}).status_code == 400
    kept = installer_client.post("/run-sheet/keep/", {"projects": "2143", "reason": "install_scheduled"})
    assert kept.status_code == 200
    assert LookupEvent.objects.filter(project_id=2143).count() == 2


# --- the route ---------------------------------------------------------------------


def test_the_route_goes_from_here_through_every_site_in_order(installer_client):
    page = installer_client.get("/run-sheet/?projects=1003,2143,9404,2144")
    routes = route_links(page)
    assert len(routes) == 1 and routes[0].startswith("https://www.google.com/maps/dir/?api=1&")
    assert "origin" not in parse_qs(urlsplit(routes[0]).query)  # from the phone's own location
    assert route_stops(routes[0]) == [
        "221 Old Cleveland Road, Coorparoo, QLD, 4151",
        "132 Mono Drive, Brisbane, QLD, 4321",
        "480 Mount Cotton Road, Capalaba, QLD, 4157",
    ]
    assert "Not on the route (no customer or no site address): stop 3." in text(page)


def test_a_long_day_is_split_into_legs_that_open_on_phones(installer_client):
    ids = [1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009]
    page = installer_client.get("/run-sheet/?projects=" + ",".join(map(str, ids)))
    legs = route_links(page)
    assert len(legs) == 3
    stops = [route_stops(href) for href in legs]
    assert [len(leg) for leg in stops] == [4, 5, 2]  # later legs start where the last ended
    assert stops[1][0] == stops[0][-1] and stops[2][0] == stops[1][-1]
    assert all(len(parse_qs(urlsplit(href).query).get("waypoints", [""])[0].split("|")) <= 3 for href in legs)
    assert "Route in Google Maps, part 2: stops 5–8" in text(page)


def test_sites_with_an_address_warning_are_flagged_before_the_route(installer_client):
    shown = text(installer_client.get("/run-sheet/?projects=2143,2148"))
    # (text() puts a space around each tag: the stop's number is in one, for run-sheet.js.)
    warning = re.search(r"Check this address before you drive: stop 2 ?\(Bazza Kowalski\)\.", shown)
    assert warning and warning.start() < shown.index("Route in Google Maps")
    # What is wrong with it, on the job itself, before its Directions.
    detail = shown.index("This address has no state or postcode")
    assert shown.index("2. Bazza Kowalski") < detail < shown.index("Directions", shown.index("2. Bazza Kowalski"))


# --- keeping it on the device ------------------------------------------------------


def test_keeping_a_sheet_is_recorded_naming_its_projects(installer_client, settings):
    settings.TRUSTED_PROXY_COUNT = 1  # the proxy in front sets the request ID
    response = installer_client.post("/run-sheet/keep/", {"projects": "2143,9404,2144"}, HTTP_X_REQUEST_ID="keep-1")
    assert response.status_code == 200
    assert re.search(r"Saved at \d{1,2}:\d{2} [ap]\.m\., may be out of date\.", text(response))
    assert "Keep on this device for today" not in text(response) and "Move down" not in text(response)

    review = HistoryReview.objects.get()
    assert (review.username, review.kind, review.detail, review.rows, review.request_id) == (
        "ivy.installer",
        "kept_on_device",
        {"projects": [2143, 9404, 2144]},
        3,
        "keep-1",
    )
    # The copy that left for the device was looked up, and audited, like any sheet.
    assert sorted(LookupEvent.objects.filter(request_id="keep-1").values_list("project_id", flat=True)) == [
        2143,
        2144,
        9404,
    ]


def test_a_kept_copy_lasts_until_the_portals_midnight_or_the_end_of_the_sign_in(installer_client, settings):
    kept = installer_client.post("/run-sheet/keep/", {"projects": "2143"})
    until = datetime.fromtimestamp(int(kept["X-Kept-Until"]) / 1000, tz=UTC)
    midnight = timezone.make_aware(datetime.combine(timezone.localdate() + timedelta(days=1), time.min))
    session_ends = installer_client.session.get_expiry_date()
    assert abs((until - min(midnight, session_ends)).total_seconds()) < 5
    assert kept["X-Kept-Until-Reason"] == ("midnight" if midnight <= session_ends else "sign-in")

    settings.SESSION_COOKIE_AGE = 60  # a sign-in that ends within the minute: it bounds the copy
    kept = installer_client.post("/run-sheet/keep/", {"projects": "2143"})
    assert kept["X-Kept-Until-Reason"] == "sign-in"
    assert 0 < int(kept["X-Kept-Until"]) / 1000 - timezone.now().timestamp() <= 60


def test_every_page_names_its_sign_in_without_giving_the_session_key_away(installer_client):
    page = installer_client.get("/run-sheet/").content.decode()
    marker = re.search(r'<meta name="portal-sign-in" content="([0-9a-f]{32})">', page)[1]
    assert installer_client.session.session_key not in page
    assert marker in installer_client.get("/projects/2143/").content.decode()  # the same sign-in, the same
    signed_out = Client().get("/accounts/login/").content.decode()
    assert '<meta name="portal-sign-in" content="">' in signed_out


def test_admins_see_kept_sheets_among_the_reviews(installer_client, client, admin_user_role):
    installer_client.post("/run-sheet/keep/", {"projects": "2143,2144"})
    client.force_login(admin_user_role)
    shown = text(client.get("/history/reviews/"))
    assert "ivy.installer Kept customers' details on a device projects=[2143, 2144] 2" in shown


def test_keeping_needs_a_post_a_role_and_a_valid_list(installer_client, client, no_role_user):
    assert installer_client.get("/run-sheet/keep/").status_code == 405
    assert installer_client.post("/run-sheet/keep/", {"projects": "nothing"}).status_code == 400
    client.force_login(no_role_user)
    assert client.post("/run-sheet/keep/", {"projects": "2143"}).status_code == 403
    assert not HistoryReview.objects.exists()


def test_every_customer_page_of_the_sheet_is_no_store(installer_client):
    for response in (
        installer_client.get("/run-sheet/?projects=2143"),
        installer_client.post("/run-sheet/keep/", {"projects": "2143"}),
        installer_client.get("/projects/2143/"),
    ):
        assert "no-store" in response["Cache-Control"]


def test_the_service_worker_is_served_from_the_run_sheets_path_and_holds_no_data(client):
    response = client.get("/run-sheet/sw.js")  # no sign-in: it holds nothing of anyone
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    body = response.content.decode()
    assert "cache.put" not in body and ".add(" not in body and "addAll" not in body  # it stores nothing
    assert 'var SHEET_PATH = "/run\\u002Dsheet/"' in body


def test_signing_out_tells_the_browser_to_delete_what_it_kept(installer_client):
    response = installer_client.post("/accounts/logout/")
    assert response["Clear-Site-Data"] == '"storage"'


def test_the_policy_lets_only_our_own_worker_run(installer_client):
    policy = installer_client.get("/run-sheet/?projects=2143")["Content-Security-Policy"]
    assert "worker-src 'self'" in policy and "unsafe-inline" not in policy


# --- built from result pages -------------------------------------------------------


def test_add_to_todays_run_sheet_from_a_result(installer_client):
    result = installer_client.get("/projects/2143/")
    assert "Add to today's run sheet" in text(result)

    added = installer_client.post("/run-sheet/add/", {"project": "2143"}, **HTMX)
    assert added.status_code == 200
    assert text(added) == "On today's run sheet (1 project). Open today's run sheet"
    assert 'href="/run-sheet/?projects=2143"' in added.content.decode()  # the sheet, not a form
    assert installer_client.session["run_sheet"]["projects"] == [2143]
    assert "On today's run sheet (1 project)" in text(installer_client.get("/projects/2143/"))

    without_javascript = installer_client.post("/run-sheet/add/", {"project": "2144"})
    assert without_javascript["Location"] == "/run-sheet/?projects=2143,2144"
    assert installer_client.session["run_sheet"]["projects"] == [2143, 2144]


def test_adding_refuses_bad_input_and_a_full_sheet(installer_client):
    assert installer_client.post("/run-sheet/add/", {"project": "x"}).status_code == 400
    for project_id in range(1001, 1021):
        installer_client.post("/run-sheet/add/", {"project": project_id})
    response = installer_client.post("/run-sheet/add/", {"project": "2143"}, **HTMX)
    assert "already holds 20" in text(response)


# --- who may see it ----------------------------------------------------------------


def test_anonymous_users_are_sent_to_sign_in(client):
    for url in ("/run-sheet/", "/run-sheet/?projects=2143"):
        assert client.get(url)["Location"].startswith("/accounts/login/?next=")
    assert client.post("/run-sheet/add/", {"project": "2143"})["Location"].startswith("/accounts/login/")
    assert not LookupEvent.objects.exists()


@pytest.mark.parametrize("role", ["Sales", "Installers", "Admins"])
def test_every_role_that_looks_up_customers_may_use_the_sheet(client, make_user, role):
    client.force_login(make_user("someone", role))
    assert client.get("/run-sheet/?projects=2143").status_code == 200
    assert LookupEvent.objects.get().outcome == "found"


def test_a_user_without_a_role_gets_403_and_each_attempt_is_audited(client, no_role_user):
    client.force_login(no_role_user)
    assert client.get("/run-sheet/").status_code == 403
    assert client.post("/run-sheet/add/", {"project": "2143"}).status_code == 403
    response = client.get("/run-sheet/?projects=2143,2144")
    assert response.status_code == 403
    assert "Judy" not in text(response)
    assert sorted(LookupEvent.objects.values_list("project_id", "outcome")) == [
        (2143, "not_authorised"),
        (2144, "not_authorised"),
    ]
