"""Pages over HTTP: what a signed-in member of staff sees, and what others cannot."""

import re

import pytest
from django.urls import reverse
from django.utils import dateformat, timezone

from customers.management.commands.seed_demo import DEMO_USERS
from customers.models import LookupEvent
from tests.support.pages import hrefs, text
from tests.support.processes import BlackHole

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def sales_client(client, sales_user):
    client.force_login(sales_user)
    return client


def test_anonymous_users_are_sent_to_sign_in(client):
    for url in ("/", "/projects/2143/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    assert not LookupEvent.objects.exists()


def test_signing_in_with_the_login_form_lands_on_the_search_page(client, sales_user):
    response = client.post("/accounts/login/", {"username": "sam.sales", "password": "correct-horse-battery"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert "Project ID" in text(client.get("/"))


def test_signing_out_needs_a_post(sales_client):
    assert sales_client.get("/accounts/logout/").status_code == 405
    assert sales_client.post("/accounts/logout/").status_code == 302
    assert sales_client.get("/").status_code == 302


def test_the_search_page_has_the_form_and_says_there_are_no_lookups_yet(sales_client):
    response = sales_client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'inputmode="numeric"' in page and "data-autofocus-desktop" in page
    assert "None yet. Projects you look up appear here." in text(response)


def test_the_plain_form_redirects_to_the_project_page(sales_client):
    response = sales_client.get("/", {"project": "  Project #2143 "})
    assert response.status_code == 302
    assert response["Location"] == "/projects/2143/"
    assert not LookupEvent.objects.exists()  # the lookup happens on the page it lands on


def test_the_project_page_shows_both_cards_with_working_links(sales_client):
    response = sales_client.get("/projects/2143/")

    assert response.status_code == 200
    page = text(response)
    assert "Judy Matherson" in page and "Contact" in page and "Site" in page
    assert "0411 549 054" in page and "1300 602 452" in page
    assert "132 Mono Drive, Brisbane, QLD, 4321" in page
    links = hrefs(response)
    assert "tel:+61411549054" in links
    assert "tel:1300602452" in links
    assert "mailto:judymatherson@gmail.com" in links
    assert "https://www.google.com/maps/dir/?api=1&amp;destination=132+Mono+Drive%2C+Brisbane%2C+QLD%2C+4321" in links
    assert "https://maps.apple.com/?daddr=132+Mono+Drive%2C+Brisbane%2C+QLD%2C+4321" in links
    assert LookupEvent.objects.get().outcome == "found"


def test_the_business_customer_card(sales_client):
    response = sales_client.get("/projects/2144/")
    page = text(response)
    assert "ABN 51 824 753 556" in page
    assert "GST registered Yes" in page
    assert "(07) 3123 4567" in page and "13 11 14" in page
    assert {"tel:+61731234567", "tel:131114", "tel:1800555010"} <= set(hrefs(response))
    # The note keeps its line breaks.
    assert "Site contact: Dee (operations).<br>Loading dock" in response.content.decode()


def test_an_overseas_number_is_shown_in_international_format(sales_client):
    response = sales_client.get("/projects/2145/")
    assert "+64 21 123 4567" in text(response)
    assert "tel:+64211234567" in hrefs(response)
    assert "Phone 2" not in text(response)  # empty fields are left out, never "None"
    assert "None" not in text(response)


def test_values_that_are_not_valid_are_shown_but_never_linked(sales_client):
    response = sales_client.get("/projects/2149/")
    page = text(response)
    assert "000 not a number that can be dialled" in page
    assert "12345 not a number that can be dialled" in page
    assert "pat.lee at example dot com not a valid email address" in page
    assert "not an ABN not a valid ABN" in page
    assert not [link for link in hrefs(response) if link.startswith(("tel:", "mailto:"))]


def test_hostile_upstream_data_is_escaped_and_never_linked(sales_client):
    response = sales_client.get("/projects/2147/")
    page = response.content.decode()

    assert response.status_code == 200
    assert "<script>alert" not in page and "<img src=x" not in page and "<iframe" not in page
    assert "&lt;script&gt;alert(&#x27;first&#x27;)&lt;/script&gt;" in page
    assert not [link for link in hrefs(response) if "javascript" in link.lower()]
    assert not [link for link in hrefs(response) if link.startswith(("tel:", "mailto:"))]
    assert "{{ settings.SECRET_KEY }}" in text(response)  # shown as text, not evaluated
    assert "not a valid ABN" in text(response)


@pytest.mark.parametrize(
    ("project_id", "status", "message"),
    [
        (9404, 404, "Solar Proof has no project with that ID."),
        (9405, 404, "no customer is assigned to it yet"),
        (9403, 403, "Solar Proof does not allow the portal to see this project."),
        (9401, 502, "The portal's Solar Proof key was refused: tell an administrator."),
        (9500, 502, "Solar Proof gave an answer the portal could not read."),
        (9503, 503, "Solar Proof was unavailable. It answered that it cannot serve requests for now."),
    ],
)
def test_each_error_has_its_own_plain_message(sales_client, project_id, status, message):
    response = sales_client.get(f"/projects/{project_id}/")
    assert response.status_code == status
    assert message in text(response)
    assert "Traceback" not in response.content.decode()
    assert LookupEvent.objects.get().project_id == project_id


def test_a_solar_proof_that_says_it_is_down_and_one_that_never_answers_read_differently(sales_client, settings):
    down = sales_client.get("/projects/9503/")
    with BlackHole() as hole:
        settings.SOLARPROOF_API_URL = hole.url
        settings.SOLARPROOF_TIMEOUT = 0.3
        silent = sales_client.get("/projects/2143/")
    said = "Solar Proof was unavailable. It answered that it cannot serve requests for now. Try again in a minute."
    assert said in text(down)
    assert "Solar Proof was unavailable. It did not answer in time. Try again in a minute." in text(silent)
    assert "did not answer" not in text(down)
    # Audited alike: both are Solar Proof being unavailable.
    assert {event.outcome for event in LookupEvent.objects.all()} == {"upstream_unavailable"}


def test_htmx_gets_the_partial_and_the_pushed_url(sales_client):
    response = sales_client.get("/", {"project": "2143"}, **HTMX)

    assert response.status_code == 200
    assert response["HX-Push-Url"] == "/projects/2143/"
    assert "HX-Request" in response["Vary"]
    page = response.content.decode()
    assert "<html" not in page and "Judy Matherson" in page
    assert 'id="recent" class="recent" aria-labelledby="recent-title" hx-swap-oob="true"' in page
    assert "Showing Judy Matherson, project 2143." in page


def test_htmx_gets_the_title_for_the_tab_and_a_typo_pushes_its_own_address(sales_client):
    found = sales_client.get("/", {"project": "2143"}, **HTMX).content.decode()
    assert found.startswith("<title>Project 2143 · Solar Proof staff portal</title>")

    typo = sales_client.get("/", {"project": "21a3"}, **HTMX)
    assert typo.status_code == 400
    assert typo["HX-Push-Url"] == "/?project=21a3"
    assert typo.content.decode().startswith("<title>Customer lookup · Solar Proof staff portal</title>")
    # The error box says it; the status region stays quiet, so it is read out once.
    assert re.search(r'<p id="announce"[^>]*></p>', typo.content.decode())


def test_the_full_page_and_the_partial_share_one_card(sales_client):
    full = sales_client.get("/projects/2143/?refresh=1").content.decode()
    partial = sales_client.get("/projects/2143/?refresh=1", **HTMX).content.decode()
    card = re.search(r'<div class="cards">.*?</article>', partial, re.S)[0]
    # The same markup but for the CSRF token (in "Add to today's run sheet"), masked anew
    # in every response.
    token = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert token.sub("csrf", card) in token.sub("csrf", full)


def test_an_invalid_id_is_a_form_error_with_no_lookup(sales_client, portal_upstream):
    before = portal_upstream.total_calls()
    for query in ("abc", "21 43", "-5", "0", "99999999999", "", "2143; DROP TABLE"):
        response = sales_client.get("/", {"project": query})
        assert response.status_code == 400
        assert 'aria-invalid="true"' in response.content.decode()
        assert ("A project ID is a whole number" in text(response)) or (
            "Enter a Solar Proof project ID" in text(response) or "too large for a project ID" in text(response)
        )
    assert portal_upstream.total_calls() == before
    assert not LookupEvent.objects.exists()


@pytest.mark.parametrize("typed", ["99999999999999999999", "4294967296", "Project #99999999999"])
def test_a_whole_number_too_large_is_told_the_limit_not_that_it_is_no_number(sales_client, typed):
    response = sales_client.get("/", {"project": typed})
    assert response.status_code == 400
    message = "That number is too large for a project ID: they go up to 4294967295 (10 digits)."
    assert message in text(response)
    assert "whole number" not in text(response)


def test_an_out_of_range_id_in_the_url_is_a_clear_error(sales_client):
    response = sales_client.get("/projects/0/")
    assert response.status_code == 400
    assert "A project ID is a whole number such as 2143" in text(response)
    assert sales_client.get("/projects/abc/").status_code == 404
    assert not LookupEvent.objects.exists()


def test_a_user_without_a_role_sees_no_customer_data(client, no_role_user, portal_upstream):
    client.force_login(no_role_user)
    before = portal_upstream.calls(2143)
    response = client.get("/projects/2143/")
    assert response.status_code == 403
    assert "your account has no portal role that allows it" in text(response)
    assert "Ask your manager or a portal administrator to give your account the Sales" in text(response)
    assert "Judy" not in response.content.decode()
    assert portal_upstream.calls(2143) == before
    assert LookupEvent.objects.get().outcome == "not_authorised"


def test_a_user_without_a_role_is_told_whom_to_ask_instead_of_a_search_form(client, no_role_user, settings):
    settings.PORTAL_ACCESS_CONTACT = "the IT service desk (07 3000 0000)"
    client.force_login(no_role_user)
    response = client.get("/")
    assert response.status_code == 403
    assert "Ask the IT service desk (07 3000 0000) to give your account" in text(response)
    assert 'name="project"' not in response.content.decode()


def test_rate_limited_lookups_answer_429_with_a_clear_message(settings, sales_client):
    settings.LOOKUP_RATE_LIMIT = (1, 60)
    sales_client.get("/projects/2143/")
    response = sales_client.get("/projects/2144/")
    assert response.status_code == 429
    assert "Too many lookups in a short time: you have made more than 1 lookups in a minute." in text(response)


def test_recent_lookups_list_the_users_own_lookups_newest_first(client, sales_user, installer_user):
    client.force_login(installer_user)
    client.get("/projects/1001/")
    client.force_login(sales_user)
    for project_id in (2143, 9404, 2144):
        client.get(f"/projects/{project_id}/")
    listed = re.findall(r"Project (\d+)</a>", client.get("/").content.decode())
    assert listed == ["2144", "9404", "2143"]


def test_refresh_asks_solar_proof_again(sales_client, portal_upstream):
    sales_client.get("/projects/2144/")
    cached = sales_client.get("/projects/2144/")
    assert "From the portal's cache" in text(cached)
    before = portal_upstream.calls(2144)
    refreshed = sales_client.get("/projects/2144/?refresh=1")
    assert "From the portal's cache" not in text(refreshed)
    assert portal_upstream.calls(2144) == before + 1


def test_the_audit_row_carries_the_request_id_and_address(sales_client, settings):
    settings.TRUSTED_PROXY_COUNT = 1  # the proxy in front sets the request ID
    response = sales_client.get("/projects/2143/", HTTP_X_REQUEST_ID="abc-123", REMOTE_ADDR="192.0.2.7")
    assert response["X-Request-ID"] == "abc-123"
    event = LookupEvent.objects.get()
    assert (event.request_id, event.ip) == ("abc-123", "192.0.2.7")


def test_a_browser_cannot_choose_the_request_id_its_audit_rows_carry(sales_client):
    response = sales_client.get("/projects/2143/", HTTP_X_REQUEST_ID="d0b83f5d7f294d7c806ed046a00b7acf")
    assert response["X-Request-ID"] != "d0b83f5d7f294d7c806ed046a00b7acf"
    assert LookupEvent.objects.get().request_id == response["X-Request-ID"]


def test_a_forged_request_id_is_replaced(sales_client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    response = sales_client.get("/projects/2143/", HTTP_X_REQUEST_ID="<script>" * 20)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert LookupEvent.objects.get().request_id == response["X-Request-ID"]


def test_forwarded_for_is_ignored_without_trusted_proxies(sales_client):
    sales_client.get("/projects/2143/", HTTP_X_FORWARDED_FOR="203.0.113.9", REMOTE_ADDR="192.0.2.7")
    assert LookupEvent.objects.get().ip == "192.0.2.7"


def test_forwarded_for_is_read_from_the_right_behind_trusted_proxies(settings, sales_client):
    settings.TRUSTED_PROXY_COUNT = 1
    sales_client.get("/projects/2143/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9", REMOTE_ADDR="10.0.0.2")
    assert LookupEvent.objects.get().ip == "203.0.113.9"


def test_demo_mode_shows_the_banner_and_uses_the_in_process_sandbox(settings, sales_client):
    settings.SOLARPROOF_DEMO = True
    response = sales_client.get("/projects/2143/")
    assert "Demo data: the customers are made up." in text(response)
    assert "Judy Matherson" in text(response)


def test_there_is_no_banner_outside_demo_mode(sales_client):
    assert "Demo data" not in text(sales_client.get("/"))


def test_the_api_key_never_reaches_the_page(settings, sales_client):
    for project_id in (2143, 9401, 9503, 9500):
        assert settings.SOLARPROOF_API_KEY not in sales_client.get(f"/projects/{project_id}/").content.decode()


def test_pages_are_not_cached_by_the_browser(sales_client):
    assert "no-store" in sales_client.get("/projects/2143/")["Cache-Control"]


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert (response.status_code, response.content) == (200, b"ok")


def test_readyz_reports_database_and_cache(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "database": "ok", "cache": "ok"}


def test_readyz_stays_ready_with_the_cache_degraded_when_it_is_unreachable(settings, client):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "database": "ok", "cache": "degraded"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_any_host_over_plain_http(settings, client, path):
    settings.ALLOWED_HOSTS = ["portal.example.com.au"]
    settings.SECURE_SSL_REDIRECT = True
    response = client.get(path, HTTP_HOST="10.0.3.17:8000")
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/", "/healthz/", "/readyz/x", "/accounts/login/", "/static/css/portal.css"])
def test_every_other_url_keeps_the_host_check_and_the_https_redirect(settings, client, path):
    settings.ALLOWED_HOSTS = ["portal.example.com.au"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(path, HTTP_HOST="10.0.3.17:8000").status_code == 400
    redirected = client.get(path, HTTP_HOST="portal.example.com.au")
    assert redirected.status_code == 301 and redirected["Location"].startswith("https://portal.example.com.au/")


def test_a_probe_posted_to_is_not_exempt(settings, client):
    settings.ALLOWED_HOSTS = ["portal.example.com.au"]
    assert client.post("/readyz", HTTP_HOST="10.0.3.17:8000").status_code == 400


def test_unknown_pages_get_a_plain_404(sales_client):
    response = sales_client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Page not found" in text(response)


def test_reverse_names_are_stable():
    assert reverse("customers:search") == "/"
    assert reverse("customers:project", kwargs={"project_id": 2143}) == "/projects/2143/"


@pytest.mark.parametrize("path", ["/projects/abc/", "/projects/-1/", "/projects/0x10/", "/projects/abc"])
def test_it_answers_a_path_that_is_not_a_project_id_with_the_portals_own_page(settings, sales_client, path):
    settings.DEBUG = True  # as `make run` runs: Django would list every URL instead
    response = sales_client.get(path)
    assert response.status_code == 404
    assert "A project ID is a whole number such as 2143" in text(response)
    assert 'name="project"' in response.content.decode()
    assert "URLconf" not in response.content.decode()
    assert not LookupEvent.objects.exists()


def test_it_gives_a_project_path_without_its_slash_the_slash(sales_client):
    response = sales_client.get("/projects/2143")
    assert response.status_code == 302
    assert response["Location"] == "/projects/2143/"
    assert sales_client.get("/projects/")["Location"] == "/"


def test_it_answers_a_path_below_a_project_with_the_portals_not_found_page(settings, sales_client):
    settings.DEBUG = True
    response = sales_client.get("/projects/2143/nothing-here")
    assert response.status_code == 404
    assert "There is nothing at this address" in text(response)
    assert "URLconf" not in response.content.decode()


def test_it_refuses_a_not_a_project_path_to_someone_without_a_role(client, no_role_user):
    client.force_login(no_role_user)
    response = client.get("/projects/abc/")
    assert response.status_code == 403
    assert 'name="project"' not in response.content.decode()


def test_it_tells_an_installer_that_history_needs_the_admins_role(client, installer_user):
    client.force_login(installer_user)
    response = client.get("/history/")
    assert response.status_code == 403
    page = text(response)
    assert "This page needs the Admins role" in page
    assert f"signed in as {installer_user.username} with the Installers role" in page
    assert "ask your manager or a portal administrator to give your account the Admins role" in page
    assert "Sales, Installers or Admins" not in page
    assert "/history/" not in hrefs(response)


def test_it_tells_someone_without_a_role_what_it_always_did(client, no_role_user):
    client.force_login(no_role_user)
    page = text(client.get("/history/"))
    assert "your account has no portal role that allows it" in page
    assert "to give your account the Sales, Installers or Admins role" in page
    assert "This page needs" not in page


def test_it_shows_no_navigation_to_someone_without_a_role(client, no_role_user):
    client.force_login(no_role_user)
    response = client.get("/")
    assert response.status_code == 403
    assert 'aria-label="Main"' not in response.content.decode()
    assert ">Look up</a>" not in response.content.decode()


def test_it_shows_an_installer_the_look_up_link_but_not_history(installer_user, client):
    client.force_login(installer_user)
    response = client.get("/")
    assert '<a href="/">Look up</a>' in response.content.decode()
    assert "/history/" not in hrefs(response)


def test_it_logs_an_expected_refusal_as_one_line_without_a_traceback(client, installer_user, no_role_user, caplog):
    client.force_login(installer_user)
    with caplog.at_level("INFO"):
        client.get("/history/")
    refusals = [record for record in caplog.records if record.name == "django.request"]
    assert [record.getMessage() for record in refusals] == ["Forbidden (Permission denied): /history/"]
    assert not refusals[0].exc_info and "Traceback" not in caplog.text
    caplog.clear()
    client.force_login(no_role_user)
    with caplog.at_level("INFO"):
        client.get("/projects/2143/")
    assert "Traceback" not in caplog.text
    assert [r.name for r in caplog.records if r.levelname == "WARNING"] == ["django.request"]


def test_it_names_outcomes_in_recent_lookups_as_the_result_page_does(sales_client):
    for project_id in (9503, 9401, 9404):
        sales_client.get(f"/projects/{project_id}/")
    recent = text(sales_client.get("/")).split("Your recent lookups", 1)[1]
    assert "Solar Proof was unavailable" in recent
    assert "The portal's Solar Proof key was refused: tell an administrator" in recent
    assert "Solar Proof has no project with that ID" in recent
    for internal in ("Upstream unavailable", "API key invalid", "upstream_unavailable", "Project not found"):
        assert internal not in recent


@pytest.mark.parametrize("project_id", [9404, 9405, 9403, 9401, 9400, 9500, 9503])
def test_it_says_what_happened_in_the_one_wording_of_its_outcome(sales_client, project_id):
    from customers.outcomes import Outcome

    page = text(sales_client.get(f"/projects/{project_id}/"))
    outcome = Outcome(LookupEvent.objects.get().outcome)
    assert f"Project {project_id}: no customer shown {outcome.label}." in page
    recent = page.split("Your recent lookups", 1)[1]
    assert outcome.label in recent


def test_it_shows_when_each_recent_lookup_was_made_in_the_portals_time_zone(sales_client):
    sales_client.get("/projects/2143/")
    made = timezone.localtime(LookupEvent.objects.get().created_at)
    page = sales_client.get("/").content.decode()
    assert f'<time datetime="{dateformat.format(made, "c")}">{dateformat.format(made, "D j M, g:i a")}</time>' in page


def test_it_has_htmx_reload_the_whole_page_for_a_refusal(client, sales_user, no_role_user):
    client.force_login(no_role_user)  # e.g. the role was taken away while the search was open
    response = client.get("/", {"project": "2143"}, **HTMX)
    assert response.status_code == 403
    assert response["HX-Refresh"] == "true"
    assert "HX-Refresh" not in client.get("/")


def test_demo_mode_lists_the_demo_projects_to_try(settings, sales_client):
    settings.SOLARPROOF_DEMO = True
    shown = text(sales_client.get("/"))
    assert "Demo projects to try" in shown
    assert "2147 (hostile data, safely shown)" in shown
    for case in ("2149 (numbers, email and ABN", "9515 (slow to arrive)", "9599 (no answer in time)"):
        assert case in shown
    assert "/projects/2143/" in hrefs(sales_client.get("/"))


def test_the_demo_sign_in_hint_names_every_demo_user(settings, client):
    settings.SOLARPROOF_DEMO = True
    hint = text(client.get("/accounts/login/")).split("Demo: sign in as", 1)[1]
    assert [user[0] for user in DEMO_USERS if user[0] not in hint] == []
    assert "visitor (no role: sees no customer)" in hint
