"""The installer's day in a real browser: build a run sheet, reorder it, take the route,
keep it for reading without signal, and lose it at sign-out."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from accounts.models import Session
from customers.models import HistoryReview, LookupEvent
from tests.browser.conftest import ARTIFACTS, VIEWPORTS
from tests.support.axe import axe_violations

pytestmark = pytest.mark.browser

ADDRESSES = {
    2143: "132 Mono Drive, Brisbane, QLD, 4321",
    2148: "Lot 12 Back Creek Road, near the old dairy",
    1003: "221 Old Cleveland Road, Coorparoo, QLD, 4151",
}


def job_titles(page) -> list[str]:
    return [title.strip() for title in page.locator(".job h2").all_inner_texts()]


def route_stops(page) -> list[str]:
    href = page.get_by_role("link", name=re.compile("^Route in Google Maps")).get_attribute("href")
    query = parse_qs(urlsplit(href).query)
    assert "origin" not in query  # from wherever the installer is
    return [*query["waypoints"][0].split("|"), *query["destination"]]


def keep(page) -> None:
    page.get_by_role("button", name="Keep on this device for today").click()
    expect(page.locator("[data-device-status]")).to_have_text(re.compile("^This sheet is kept on this device"))
    expect(page.get_by_role("button", name="Remove from this device")).to_be_visible()


def build_sheet(page, projects: str) -> None:
    page.goto("/run-sheet/")
    page.get_by_label("Project IDs").fill(projects)
    page.get_by_role("button", name="Show run sheet").click()
    page.wait_for_selector(".run-sheet")


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_an_installer_builds_reorders_routes_and_keeps_the_days_sheet(open_page, viewport):
    page = open_page(viewport)
    build_sheet(page, "Project #2143\n9404\n2148, 1003")

    assert page.url.endswith("/run-sheet/?projects=2143,9404,2148,1003")
    assert job_titles(page) == ["1. Judy Matherson", "2. Project 9404", "3. Bazza Kowalski", "4. Ava Kelly"]
    assert "Solar Proof has no project with that ID" in page.inner_text("#job-9404")
    assert route_stops(page) == [ADDRESSES[2143], ADDRESSES[2148], ADDRESSES[1003]]
    assert "Check this address before you drive: stop 3 (Bazza Kowalski)." in page.inner_text(".route")
    assert "This address has no state or postcode" in page.inner_text("#job-2148 .warning")

    # Moved in place: the address follows, nothing is looked up again.
    looked_up = LookupEvent.objects.count()
    page.get_by_role("link", name="Move Bazza Kowalski up, to stop 2").click()
    page.wait_for_url(re.compile(r"projects=2143,2148,9404,1003$"))
    expect(page.get_by_role("link", name="Move Bazza Kowalski up, to stop 1")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"projects=2148,2143,9404,1003$"))
    assert job_titles(page) == ["1. Bazza Kowalski", "2. Judy Matherson", "3. Project 9404", "4. Ava Kelly"]
    assert route_stops(page) == [ADDRESSES[2148], ADDRESSES[2143], ADDRESSES[1003]]
    assert "stop 1 (Bazza Kowalski)" in page.inner_text(".route")
    assert "Not on the route (no customer or no site address): stop 3." in page.inner_text("main")
    assert not page.get_by_role("link", name=re.compile("^Move Bazza Kowalski up")).is_visible()
    assert LookupEvent.objects.count() == looked_up
    page.reload()  # and the address is the sheet in that order
    assert job_titles(page) == ["1. Bazza Kowalski", "2. Judy Matherson", "3. Project 9404", "4. Ava Kelly"]
    page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "screenshots" / f"run-sheet-{viewport}.png", full_page=viewport == "desktop")

    # Keep it, lose the signal, reload: the kept copy, with the banner.
    sheet_url = page.url.split("#")[0]
    keep(page)
    assert HistoryReview.objects.get(kind="kept_on_device").detail == {"projects": [2148, 2143, 9404, 1003]}
    page.context.set_offline(True)
    page.goto(sheet_url)
    banner = re.compile(r"^Saved at \d{1,2}:\d{2} [ap]\.m\., may be out of date\.")
    expect(page.locator(".kept-banner")).to_have_text(banner)
    assert job_titles(page) == ["1. Bazza Kowalski", "2. Judy Matherson", "3. Project 9404", "4. Ava Kelly"]
    # Styled from the kept stylesheet, offline.
    assert page.evaluate("getComputedStyle(document.querySelector('.job')).borderTopStyle") == "solid"
    expect(page.get_by_role("button", name="Remove from this device")).to_be_visible()

    # Signed out (with signal), the copy is gone: offline, nothing is shown.
    page.context.set_offline(False)
    page.goto(sheet_url)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile("/accounts/login/"))
    assert page.evaluate("caches.keys()") == []
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    page.context.set_offline(True)
    with pytest.raises(PlaywrightError, match="ERR_INTERNET_DISCONNECTED"):
        page.goto(sheet_url)


def test_without_javascript_the_move_links_reload_the_sheet_in_the_new_order(open_page):
    page = open_page("phone", javascript=False)
    page.goto("/run-sheet/?projects=2143,2144,1003")
    page.get_by_role("link", name="Move Ava Kelly up, to stop 2").click()
    page.wait_for_url(re.compile(r"projects=2143,1003,2144#job-1003$"))
    assert job_titles(page) == ["1. Judy Matherson", "2. Ava Kelly", "3. Marcus Aurelio"]
    assert route_stops(page) == [ADDRESSES[2143], ADDRESSES[1003], "480 Mount Cotton Road, Capalaba, QLD, 4157"]


def test_moving_in_place_builds_the_same_route_as_the_server(open_page):
    ids = [1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009]
    page = open_page("desktop")
    page.goto("/run-sheet/?projects=" + ",".join(map(str, ids)))
    page.get_by_role("link", name=re.compile("^Move .* down, to stop 2$")).click()
    page.get_by_role("link", name=re.compile("^Move .* down, to stop 9$")).click()
    in_place = [
        (link.get_attribute("href"), link.get_attribute("aria-label"), link.inner_text())
        for link in page.locator(".route-link").all()
    ]
    page.reload()
    from_server = [
        (link.get_attribute("href"), link.get_attribute("aria-label"), link.inner_text())
        for link in page.locator(".route-link").all()
    ]
    assert page.url.endswith("?projects=1002,1001,1003,1004,1005,1006,1007,1009,1008")
    assert len(in_place) == 3
    # A part of one stop says so, not "stops 9 to 9".
    assert [text for _, _, text in in_place] == [
        "Route in Google Maps, part 1: stops 1–4",
        "Route in Google Maps, part 2: stops 5–8",
        "Route in Google Maps, part 3: stop 9",
    ]
    for (href, label, text), (server_href, server_label, server_text) in zip(in_place, from_server, strict=True):
        assert parse_qs(urlsplit(href).query) == parse_qs(urlsplit(server_href).query)
        assert (label, text) == (server_label, server_text)


def test_remove_from_this_device_deletes_the_copy_and_its_worker(open_page):
    page = open_page("tablet")
    page.goto("/run-sheet/?projects=2143")
    keep(page)
    assert page.evaluate("caches.keys()") == ["run-sheet"]
    page.get_by_role("button", name="Remove from this device").click()
    expect(page.locator("[data-device-status]")).to_have_text("Removed from this device.")
    assert page.evaluate("caches.keys()") == []
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    page.context.set_offline(True)
    with pytest.raises(PlaywrightError, match="ERR_INTERNET_DISCONNECTED"):
        page.goto("/run-sheet/?projects=2143")


def test_the_kept_copy_is_not_shown_after_the_portals_midnight(open_page, settings):
    settings.SESSION_COOKIE_AGE = 2 * 24 * 3600  # a sign-in that outlasts the day: midnight comes first
    page = open_page("phone", timezone_id="Australia/Perth")  # the device two hours behind the portal
    page.goto("/run-sheet/?projects=2143")
    keep(page)
    # Kept until the next midnight of the portal's time zone (Brisbane), not the device's.
    expiry = page.evaluate(
        """async () => {
            const kept = await (await (await caches.open("run-sheet")).match("/run-sheet/kept.json")).json();
            const at = new Date(kept.expires);
            const there = at.toLocaleTimeString("en-AU", {timeZone: "Australia/Brisbane", hour12: false});
            return {there: there, hours: at.getHours(), left: kept.expires - Date.now(),
                    zone: Intl.DateTimeFormat().resolvedOptions().timeZone};
        }"""
    )
    assert expiry["zone"] == "Australia/Perth"
    assert expiry["there"] in ("00:00:00", "24:00:00") and expiry["hours"] == 22
    assert 0 < expiry["left"] <= 24 * 3600 * 1000
    weekday = f"{timezone.localdate():%A}"  # the portal's today, whatever the device's
    expect(page.locator("[data-device-status]")).to_have_text(
        f"This sheet is kept on this device until midnight (end of {weekday})."
    )
    # The clock passes that midnight: the expiry written at keeping time is behind it.
    page.evaluate(
        """async () => {
            const cache = await caches.open("run-sheet");
            const kept = await (await cache.match("/run-sheet/kept.json")).json();
            await cache.put("/run-sheet/kept.json", new Response(JSON.stringify({...kept, expires: Date.now() - 1})));
        }"""
    )
    page.context.set_offline(True)
    # The worker finds the copy expired, deletes it and answers with a network error.
    with pytest.raises(PlaywrightError, match="net::ERR_FAILED"):
        page.goto("/run-sheet/?projects=2143")
    page.context.set_offline(False)
    page.goto("/")
    assert page.evaluate("caches.keys()") == []


def test_only_the_kept_sheet_and_its_files_are_stored(open_page):
    page = open_page("desktop")
    page.goto("/projects/2144/")  # a customer page seen before keeping: never stored
    page.goto("/run-sheet/?projects=2143,2148")
    keep(page)
    page.goto("/projects/1003/")  # and one seen after, under the worker's eyes
    page.goto("/run-sheet/?projects=2143,2148")
    stored = page.evaluate(
        """caches.open('run-sheet').then(cache => cache.keys())
            .then(keys => keys.map(key => new URL(key.url).pathname + new URL(key.url).search))"""
    )
    assert stored[0] == "/run-sheet/?projects=2143,2148"
    assert stored[0] == "/run-sheet/?projects=2143,2148" and stored[-1] == "/run-sheet/kept.json"
    assert all(path.startswith("/static/") for path in stored[1:-1])
    assert {"/static/css/portal.css", "/static/js/portal.js", "/static/js/run-sheet.js"} <= set(stored)
    assert page.evaluate("caches.keys()") == ["run-sheet"]
    page.context.set_offline(True)
    with pytest.raises(PlaywrightError, match="ERR_INTERNET_DISCONNECTED"):
        page.goto("/projects/1003/")


def test_add_to_todays_run_sheet_from_results_builds_the_sheet(open_page):
    page = open_page("phone")
    for project_id in (2144, 2143):
        page.goto(f"/projects/{project_id}/")
        page.get_by_role("button", name=re.compile(f"^Add .*, project {project_id}, to today's run sheet")).click()
        expect(page.locator("#sheet-add")).to_contain_text("On today's run sheet")
    page.get_by_role("link", name="Open today's run sheet").click()  # the sheet itself, no form to fill
    page.wait_for_url(re.compile(r"/run-sheet/\?projects=2144,2143$"))
    assert job_titles(page) == ["1. Marcus Aurelio", "2. Judy Matherson"]
    page.goto("/projects/1003/")
    page.get_by_role("link", name="Run sheet").click()  # and so does the menu's
    page.wait_for_url(re.compile(r"/run-sheet/\?projects=2144,2143$"))
    assert job_titles(page) == ["1. Marcus Aurelio", "2. Judy Matherson"]
    stored = page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert "Judy" not in stored and "Marcus" not in stored and "0411" not in stored


def test_the_sheet_prints_as_a_compact_job_list_with_every_number(open_page):
    page = open_page("desktop")
    page.goto("/run-sheet/?projects=2143,2144,9404")
    page.emulate_media(media="print")
    assert not page.locator(".job .actions").first.is_visible()
    assert not page.locator(".reorder").first.is_visible() and not page.locator(".route").is_visible()
    assert not page.locator(".site-header").is_visible()
    printed = page.inner_text(".run-sheet")
    for number in ("0411 549 054", "1300 602 452", "(07) 3123 4567", "13 11 14", "1800 555 010"):
        assert number in printed
    assert len(page.pdf(format="A4")) > 0


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_every_control_on_the_sheet_is_at_least_44_pixels(open_page, viewport):
    page = open_page(viewport)
    page.goto("/run-sheet/?projects=2143,9404,2148")
    small = page.evaluate(
        """() => [...document.querySelectorAll('main a[href], main button, main summary, main textarea')]
            .filter(el => el.offsetParent !== null)
            .map(el => ({el: el.outerHTML.slice(0, 80), box: el.getBoundingClientRect()}))
            .filter(({box}) => box.width < 44 || box.height < 44)
            .map(({el, box}) => `${el} ${Math.round(box.width)}x${Math.round(box.height)}`)"""
    )
    assert small == []
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["viewport"]["width"]


@pytest.mark.parametrize(("viewport", "scheme"), [("desktop", "light"), ("phone", "light"), ("tablet", "dark")])
def test_the_sheet_has_no_axe_violations(open_page, viewport, scheme):
    page = open_page(viewport, color_scheme=scheme)
    page.goto("/run-sheet/?projects=2143,9404,2148")
    expect(page.get_by_role("button", name="Keep on this device for today")).to_be_visible()
    assert axe_violations(page) == []
    keep(page)
    page.context.set_offline(True)
    page.reload()
    expect(page.locator(".kept-banner")).to_be_visible()
    assert axe_violations(page) == []  # the kept copy, offline, too


def test_the_empty_sheet_has_no_axe_violations(open_page):
    page = open_page("phone", color_scheme="dark")
    page.goto("/run-sheet/")
    assert axe_violations(page) == []
    assert LookupEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("projects", "first_name"),
    [
        ("2143,2148,2149,1003", "Judy Matherson"),  # two addresses flagged above the route
        # Job 1's own address flagged, and a left-out word above it all, under the demo banner.
        ("2148, 2143, 2149 x7 hello", "Bazza Kowalski"),
    ],
)
def test_a_phone_shows_the_first_job_and_its_actions_on_the_first_screen(open_page, settings, projects, first_name):
    settings.SOLARPROOF_DEMO = True
    page = open_page("phone")
    page.goto(f"/run-sheet/?projects={projects}")
    page.wait_for_selector(".run-sheet")
    first = page.locator(".job").first
    height = page.viewport_size["height"]
    shown = {
        "heading": first.locator("h2"),
        "address": first.locator(".job-address"),
        "call": first.get_by_role("link", name=re.compile(f"^Call {first_name}")),
        "directions": first.get_by_role("link", name=re.compile(f"^Directions to the site of {first_name}")),
    }
    if first_name == "Bazza Kowalski":
        expect(page.locator(".sheet-message")).to_have_text("Left out, not project IDs: x7 hello")
        shown["warning"] = first.locator(".warning")
    for name, element in shown.items():
        box = element.bounding_box()
        assert box is not None and box["y"] + box["height"] <= height, f"{name} is below the first screen: {box}"
    if "warning" in shown:  # read before the tap that starts the drive
        assert shown["warning"].bounding_box()["y"] < shown["directions"].bounding_box()["y"]
    # The route comes first; keeping the sheet for offline reading waits below the jobs.
    assert (
        page.get_by_role("link", name=re.compile("^Route in Google Maps")).bounding_box()["y"]
        < shown["heading"].bounding_box()["y"]
    )


def sign_in_as(page, user) -> None:
    """Another sign-in in the same browser, as the next person on a shared tablet gets."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.clear_cookies()
    root = re.match(r"https?://[^/]+/", page.url)[0]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": root}])


NOTHING_KEPT = """async () => (await caches.keys()).length === 0
    && (await navigator.serviceWorker.getRegistrations()).length === 0"""


def kept_copies(page) -> list[str]:
    return page.evaluate("caches.keys()")


@pytest.mark.parametrize("next_person", ["Sales", None])
def test_a_kept_copy_is_gone_when_another_person_signs_in_on_the_device(open_page, make_user, next_person):
    page = open_page("tablet")
    page.goto("/run-sheet/?projects=2143")
    keep(page)
    sign_in_as(page, make_user("next.person", next_person))  # even someone with no role
    page.goto("/")  # their first page, with signal
    expect(page.locator(".who")).to_have_text("next.person")
    page.wait_for_function(NOTHING_KEPT)
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    page.context.set_offline(True)
    with pytest.raises(PlaywrightError, match="ERR_INTERNET_DISCONNECTED"):
        page.goto("/run-sheet/?projects=2143")


def test_a_kept_copy_is_gone_when_the_session_ends(open_page):
    page = open_page("tablet")
    page.goto("/run-sheet/?projects=2143")
    keep(page)
    Session.objects.all().delete()  # the session timed out
    page.goto("/run-sheet/?projects=2143")
    page.wait_for_url(re.compile("/accounts/login/"))
    page.wait_for_function(NOTHING_KEPT)
    page.context.set_offline(True)
    # Nothing to show: the browser's own "no connection" (or, while the service worker that
    # is being removed still answers this one navigation, its network error), never the sheet.
    with pytest.raises(PlaywrightError, match=r"ERR_INTERNET_DISCONNECTED|ERR_FAILED"):
        page.goto("/run-sheet/?projects=2143")


def test_offline_a_kept_copy_stops_when_the_sign_in_would_end(open_page, settings):
    settings.SESSION_COOKIE_AGE = 3600
    # The portal's zone where it is about noon now, so the hour-long sign-in ends before the
    # portal's midnight whenever the test runs (in Brisbane's last hour it would not).
    settings.TIME_ZONE = f"Etc/GMT{timezone.now().hour - 12:+d}"
    page = open_page("phone")
    page.goto("/run-sheet/?projects=2143")
    page.get_by_role("button", name="Keep on this device for today").click()
    expect(page.locator("[data-device-status]")).to_have_text(
        re.compile(r"^This sheet is kept on this device until \d{1,2}:\d{2} [ap]m, when this sign-in ends\.$")
    )
    left = page.evaluate(
        """async () => (await (await (await caches.open("run-sheet")).match("/run-sheet/kept.json")).json()).expires
            - Date.now()"""
    )
    assert 3500 * 1000 < left <= 3600 * 1000


def test_signing_out_offline_says_so_and_finishes_when_back_online(open_page):
    page = open_page("phone")
    page.goto("/run-sheet/?projects=2148")
    keep(page)
    sheet_url = page.url
    page.context.set_offline(True)
    page.reload()  # the kept copy, in the van
    expect(page.locator(".kept-banner")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("alert")).to_contain_text("No connection: you will be signed out when it is back")
    assert page.url == sheet_url  # not the browser's own "no internet" page
    assert "Bazza" not in page.inner_text("main")  # and no customer left on the screen
    assert kept_copies(page) == []

    page.context.set_offline(False)
    page.wait_for_url(re.compile("/accounts/login/"), timeout=15_000)  # finished by itself
    page.goto(sheet_url)
    page.wait_for_url(re.compile("/accounts/login/"))  # signed out on the portal's side too
