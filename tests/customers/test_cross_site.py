"""Another site's link never looks a customer up: it gets one "Look up" button instead."""

from types import SimpleNamespace

import pytest
from django.test import RequestFactory

from customers.cross_site import confirmation, is_cross_site, origin_of, vouch_for
from customers.models import LookupEvent
from tests.support.pages import hrefs, text

pytestmark = pytest.mark.django_db

CROSS_SITE = {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_REFERER": "https://mail.example.net/"}
FROM_THE_PORTAL = {"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_REFERER": "http://testserver/projects/2143/"}


@pytest.fixture
def sales_client(client, sales_user):
    client.force_login(sales_user)
    return client


def _asks(**headers: str) -> bool:
    return is_cross_site(RequestFactory().get("/projects/2143/", **headers))


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
        # Another host under the same registrable domain (a wiki, a staging site) is not the portal.
        {"HTTP_SEC_FETCH_SITE": "same-site", "HTTP_REFERER": "https://wiki.testserver/"},
        {"HTTP_REFERER": "https://evil.example/page"},
        {"HTTP_REFERER": "https://testserver/"},  # another scheme is another origin
        {"HTTP_REFERER": "http://testserver:8080/"},
        {"HTTP_REFERER": "not a url"},
        {"HTTP_SEC_FETCH_SITE": "something-new"},
    ],
)
def test_it_counts_as_cross_site(headers):
    assert _asks(**headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},  # scripts, monitoring: no fetch metadata, no Referer
        {"HTTP_SEC_FETCH_SITE": "none"},  # typed, bookmarked
        {"HTTP_SEC_FETCH_SITE": "same-origin"},
        {"HTTP_REFERER": "http://testserver/"},
        {"HTTP_REFERER": "http://TestServer:80/history/"},
        {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_REFERER": "https://solarproof.com.au/projects/view/2143"},
    ],
)
def test_it_does_not_count_as_cross_site(headers, settings):
    settings.LOOKUP_LINK_ORIGINS = ["https://solarproof.com.au"]
    assert not _asks(**headers)


def test_it_reads_origins_without_default_ports():
    assert origin_of("https://Solarproof.com.au:443/x?y#z") == "https://solarproof.com.au"
    assert origin_of("http://[::1]:8000/") == "http://[::1]:8000"
    assert origin_of("javascript:alert(1)") is None
    assert origin_of("https://host:99999/") is None
    assert origin_of("https:///projects/2143/") is None  # no host
    assert origin_of("ftp://solarproof.com.au/") is None
    assert _asks(HTTP_REFERER="https:///projects/2143/")  # a Referer that is no origin is foreign


def test_the_confirmation_names_what_was_not_done_and_who_is_signed_in(sales_user):
    request = RequestFactory().get("/run-sheet/?projects=2143,2144")
    request.user = sales_user
    several = text(confirmation(request, project_ids=[2143, 2144], what="run sheet"))
    assert "Project 2143, 2144" in several and "so the run sheet has not been looked up yet" in several
    assert "sam.sales" in several

    one = text(confirmation(request, project_ids=[2143]))
    assert "Project 2143" in one and "so the customer has not been looked up yet" in one
    log = text(confirmation(request, what="history"))
    assert "History" in log and "so the history has not been opened yet" in log


@pytest.mark.parametrize(
    "referer",
    [
        "https://solarproof.com.au.evil.example/projects/view/2143",
        "https://solarproof.com.au@evil.example/",
        "https://evil.example/https://solarproof.com.au",
        "https://evil-solarproof.com.au/",
        "https://www.solarproof.com.au/",
        "https://solarproof.com.au:8443/",
        "http://solarproof.com.au/",
    ],
)
@pytest.mark.parametrize("fetch_site", ["cross-site", ""], ids=["fetch metadata", "Referer only"])
def test_a_look_alike_of_a_trusted_link_origin_is_still_another_site(settings, referer, fetch_site):
    settings.LOOKUP_LINK_ORIGINS = ["https://solarproof.com.au"]
    headers = {"HTTP_REFERER": referer} | ({"HTTP_SEC_FETCH_SITE": fetch_site} if fetch_site else {})
    assert _asks(**headers)


def _vouch(client, url: str) -> None:
    """What the company sign-in leaves behind when the portal itself sent staff on a trip to
    the provider: the way back to ``url`` counts as the portal's own, once."""
    session = client.session
    vouch_for(SimpleNamespace(session=session), url)
    session.save()


@pytest.mark.parametrize(
    "left_over", [None, "/projects/9999/", "/history/"], ids=["none", "another project", "history"]
)
def test_another_sites_link_to_the_search_form_does_not_look_up(sales_client, portal_upstream, left_over):
    """The plain search form redirects to the project's page; the redirect keeps the other
    site's fetch metadata, and a vouch the portal left for another page is not this one's."""
    if left_over:
        _vouch(sales_client, left_over)
    asked_before = portal_upstream.calls(2143)

    to_project = sales_client.get("/?project=2143", **CROSS_SITE)
    assert to_project.status_code == 302 and to_project["Location"] == "/projects/2143/"
    landed = sales_client.get(to_project["Location"], **CROSS_SITE)

    assert "has not been looked up yet" in text(landed) and "Judy" not in text(landed)
    assert not LookupEvent.objects.exists()
    assert portal_upstream.calls(2143) == asked_before


def test_a_vouched_for_search_hands_its_vouch_to_the_project_page_once(sales_client):
    """Company sign-in started from the portal's own search: the provider's redirect back is
    cross-site, but the trip was the portal's, so the lookup happens, once."""
    _vouch(sales_client, "/?project=2143")

    to_project = sales_client.get("/?project=2143", **CROSS_SITE)
    assert "Judy Matherson" in text(sales_client.get(to_project["Location"], **CROSS_SITE))
    assert LookupEvent.objects.count() == 1

    again = sales_client.get("/projects/2143/", **CROSS_SITE)
    assert "has not been looked up yet" in text(again)
    assert LookupEvent.objects.count() == 1


def test_it_shows_a_cross_site_link_the_project_and_one_button_without_looking_up(sales_client, portal_upstream):
    asked_before = portal_upstream.calls(2143)
    response = sales_client.get("/projects/2143/", **CROSS_SITE)

    assert response.status_code == 200
    page = text(response)
    assert "Project 2143" in page and "has not been looked up yet" in page
    assert "Judy" not in page and "Matherson" not in page
    assert "/projects/2143/" in hrefs(response)
    assert "no-store" in response["Cache-Control"]
    assert not LookupEvent.objects.exists()
    assert portal_upstream.calls(2143) == asked_before


def test_it_looks_up_after_the_one_tap(sales_client, portal_upstream):
    asked_before = portal_upstream.calls(2143)
    button = next(href for href in hrefs(sales_client.get("/projects/2143/", **CROSS_SITE)) if "2143" in href)

    response = sales_client.get(button, **FROM_THE_PORTAL)

    assert response.status_code == 200 and "Judy Matherson" in text(response)
    assert LookupEvent.objects.get().outcome == "found"
    assert portal_upstream.calls(2143) == asked_before + 1


@pytest.mark.parametrize(
    "headers",
    [{"HTTP_SEC_FETCH_SITE": "none"}, {}, FROM_THE_PORTAL],
    ids=["typed or bookmarked", "a script", "the portal's own link"],
)
def test_it_looks_up_as_before_when_not_cross_site(sales_client, headers):
    response = sales_client.get("/projects/2143/", **headers)
    assert "Judy Matherson" in text(response)
    assert LookupEvent.objects.count() == 1


def test_it_looks_up_from_a_solar_proof_link_in_one_tap(sales_client, settings):
    settings.LOOKUP_LINK_ORIGINS = ["https://solarproof.com.au"]
    headers = {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_REFERER": "https://solarproof.com.au/"}

    assert "Judy Matherson" in text(sales_client.get("/projects/2143/", **headers))
    assert LookupEvent.objects.count() == 1


def test_it_trusts_solar_proofs_origin_by_default():
    from django.conf import settings as configured

    # The test settings point SOLARPROOF_API_URL at loopback only after start-up.
    assert configured.LOOKUP_LINK_ORIGINS == ["https://solarproof.com.au"]


@pytest.mark.parametrize(
    ("url", "again"),
    [
        ("/projects/2143/contact.vcf", "/projects/2143/contact.vcf"),
        (
            "/projects/2143/visit.ics?start=2026-12-01T09:00&minutes=60",
            "/projects/2143/visit.ics?start=2026-12-01T09:00&amp;minutes=60",
        ),
    ],
)
def test_it_does_not_download_for_another_sites_link(sales_client, portal_upstream, url, again):
    asked_before = portal_upstream.calls(2143)
    response = sales_client.get(url, **CROSS_SITE)

    assert response.status_code == 200 and "Content-Disposition" not in response
    assert "has not been looked up yet" in text(response)
    assert again in hrefs(response)
    assert not LookupEvent.objects.exists()
    assert portal_upstream.calls(2143) == asked_before


def test_it_turns_away_a_cross_site_link_for_someone_without_a_role(client, make_user, portal_upstream):
    client.force_login(make_user("nora", role=None))
    asked_before = portal_upstream.calls(2143)

    response = client.get("/projects/2143/", **CROSS_SITE)

    assert response.status_code == 403 and "has not been looked up" not in text(response)
    assert not LookupEvent.objects.exists()
    assert portal_upstream.calls(2143) == asked_before


@pytest.mark.parametrize(
    ("opened_by", "looks_up"),
    [({"HTTP_SEC_FETCH_SITE": "cross-site"}, False), ({"HTTP_SEC_FETCH_SITE": "none"}, True)],
    ids=["another site's link", "a bookmark"],
)
def test_signing_in_does_not_turn_another_sites_link_into_a_lookup(client, sales_user, opened_by, looks_up):
    to_sign_in = client.get("/projects/2143/", **opened_by)
    sign_in_page = client.get(to_sign_in["Location"], **opened_by)  # the redirect keeps the chain's origin
    assert sign_in_page.status_code == 200
    signed_in = client.post(
        to_sign_in["Location"],
        {"username": "sam.sales", "password": "correct-horse-battery"},
        HTTP_SEC_FETCH_SITE="same-origin",
    )
    assert signed_in["Location"] == "/projects/2143/"

    landed = text(client.get("/projects/2143/", **FROM_THE_PORTAL))

    assert ("Judy Matherson" in landed) is looks_up
    assert ("has not been looked up yet" in landed) is not looks_up
    assert LookupEvent.objects.count() == (1 if looks_up else 0)
    if not looks_up:  # one tap, and it looks up
        assert "Judy Matherson" in text(client.get("/projects/2143/", **FROM_THE_PORTAL))


@pytest.fixture
def admin_client(client, admin_user_role):
    client.force_login(admin_user_role)
    return client


def _an_audited_lookup(user) -> None:
    from customers.audit import log as audit_log

    audit_log.record_lookup(user=user, project_id=2143, outcome="found", channel="web", customer_id=None)


HISTORY_PAGES = [
    ("/history/export.csv?user=sam.sales", "export of the lookup history"),
    ("/history/?user=sam.sales&project=2143", "lookup history"),
    ("/history/reviews/", "record of who reviewed the history"),
]


@pytest.mark.parametrize(("url", "what"), HISTORY_PAGES, ids=["export", "history", "reviews"])
def test_another_sites_link_cannot_read_or_export_the_audit_log_through_an_admins_browser(
    admin_client, sales_user, url, what
):
    from customers.models import HistoryReview

    _an_audited_lookup(sales_user)
    response = admin_client.get(url, **CROSS_SITE)

    assert response.status_code == 200 and "Content-Disposition" not in response
    assert response["Content-Type"].startswith("text/html")
    page = text(response)
    assert f"the {what} has not been opened yet" in page
    assert "sam.sales" not in page.replace(url, "")  # nothing of the log is shown
    assert url.replace("&", "&amp;") in hrefs(response)
    assert "no-store" in response["Cache-Control"]
    assert not HistoryReview.objects.exists()  # no review written in the admin's name


@pytest.mark.parametrize(
    ("url", "what"),
    [*HISTORY_PAGES, ("/history/customers/5001/report.json", "signed access report for customer 5001")],
    ids=["export", "history", "reviews", "access-report"],
)
@pytest.mark.parametrize("fetch_site", ["cross-site", None], ids=["fetch-metadata", "referer-only"])
def test_a_link_from_solar_proof_trusted_for_lookups_cannot_read_or_export_the_log(
    admin_client, sales_user, settings, url, what, fetch_site
):
    """LOOKUP_LINK_ORIGINS let Solar Proof's links reach a customer in one tap; a link there
    (a note, a field a customer filled in) to the log still gets the button."""
    from customers.models import HistoryReview

    settings.LOOKUP_LINK_ORIGINS = ["https://solarproof.com.au"]
    _an_audited_lookup(sales_user)
    headers = {"HTTP_REFERER": "https://solarproof.com.au/projects/2143"}
    if fetch_site:
        headers["HTTP_SEC_FETCH_SITE"] = fetch_site
    response = admin_client.get(url, **headers)

    assert response.status_code == 200 and "Content-Disposition" not in response
    assert f"the {what} has not been opened yet" in text(response)
    assert not HistoryReview.objects.exists()
    # The same link still looks a customer up in one tap.
    assert "has not been opened yet" not in text(admin_client.get("/projects/2143/", **headers))


def test_the_export_downloads_and_is_recorded_after_the_one_tap(admin_client, sales_user):
    from customers.models import HistoryReview

    _an_audited_lookup(sales_user)
    button = next(
        href for href in hrefs(admin_client.get("/history/export.csv?user=sam.sales", **CROSS_SITE)) if "export" in href
    )

    response = admin_client.get(button.replace("&amp;", "&"), **FROM_THE_PORTAL)

    assert response["Content-Disposition"].startswith("attachment;")
    assert b"sam.sales" in b"".join(response.streaming_content)
    review = HistoryReview.objects.get()
    assert (review.kind, review.detail, review.rows) == ("export", {"user": "sam.sales"}, 1)


@pytest.mark.parametrize("url", [url for url, _ in HISTORY_PAGES])
def test_a_cross_site_link_to_history_refuses_someone_without_the_admins_role(sales_client, url):
    response = sales_client.get(url, **CROSS_SITE)
    assert response.status_code == 403 and "has not been opened" not in text(response)


@pytest.mark.parametrize("url", [url for url, _ in HISTORY_PAGES])
def test_a_cross_site_link_to_history_sends_a_signed_out_visitor_to_sign_in_first(client, url):
    assert client.get(url, **CROSS_SITE)["Location"].startswith("/accounts/login/")


def test_the_guard_names_what_it_holds_back_from_the_urls_arguments(admin_user_role):
    from django.http import HttpResponse

    from customers.cross_site import confirm_cross_site

    ran = []

    @confirm_cross_site("access report for customer {customer_id}")
    def report(request, customer_id):
        ran.append(customer_id)
        return HttpResponse("the report")

    request = RequestFactory().get("/history/customers/77/", HTTP_SEC_FETCH_SITE="cross-site")
    request.user = admin_user_role
    held_back = report(request, customer_id="77")
    assert "Access report for customer 77" in text(held_back) and not ran

    request = RequestFactory().get("/history/customers/77/", HTTP_SEC_FETCH_SITE="same-origin")
    request.user = admin_user_role
    assert report(request, customer_id="77").content == b"the report" and ran == ["77"]
