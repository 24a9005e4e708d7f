"""What installers and sales staff do, in a real browser at three sizes."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
import vobject
from django.utils import timezone
from playwright.sync_api import expect

from customers.models import LookupEvent
from tests.browser.conftest import ARTIFACTS, VIEWPORTS

pytestmark = pytest.mark.browser


def search(page, text: str) -> None:
    page.fill("#id_project", text)
    page.press("#id_project", "Enter")


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_search_swaps_the_result_in_place_and_history_behaves(open_page, viewport, portal_upstream):
    page = open_page(viewport)
    page.goto("/")
    page.evaluate("window.notReloaded = true")
    search(page, " Project #2143 ")

    page.wait_for_selector("#customer-name")
    assert page.url.endswith("/projects/2143/")
    assert page.inner_text("#customer-name") == "Judy Matherson"
    assert page.evaluate("window.notReloaded") is True  # swapped in place, not a page load

    page.go_back()
    page.wait_for_url(re.compile(r"/\?q=%20Project%20%232143%20$"))
    page.wait_for_selector("#id_project")
    assert page.locator("#customer-name").count() == 0
    assert page.input_value("#id_project") == " Project #2143 "

    page.go_forward()
    page.wait_for_selector("#customer-name")
    assert page.url.endswith("/projects/2143/")
    ARTIFACTS.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "screenshots" / f"result-{viewport}.png", full_page=viewport == "desktop")


def test_the_journey_works_without_javascript(open_page):
    page = open_page("phone", javascript=False)
    page.goto("/")
    search(page, "2144")
    page.wait_for_url(re.compile(r"/projects/2144/$"))
    assert page.inner_text("#customer-name") == "Marcus Aurelio"
    assert page.locator("a[href='tel:+61731234567']").count() >= 1


def test_an_error_project_shows_its_message(open_page):
    page = open_page()
    page.goto("/")
    search(page, "9405")
    page.wait_for_selector(".problem")
    assert "no customer is assigned to it yet" in page.inner_text(".problem")
    assert page.url.endswith("/projects/9405/")


def _hrefs(page) -> list[str]:
    return page.eval_on_selector_all("#result a[href]", "links => links.map(a => a.getAttribute('href'))")


@pytest.mark.parametrize(
    ("project_id", "expected"),
    [
        (2143, {"tel:+61411549054", "sms:+61411549054", "tel:1300602452", "mailto:judymatherson@gmail.com"}),
        (2144, {"tel:+61731234567", "tel:131114", "tel:1800555010", "mailto:accounts@aurelio-nurseries.example.com"}),
        (2145, {"tel:+64211234567", "sms:+64211234567", "mailto:siobhan%2Bsolar@example.co.nz"}),
    ],
)
def test_every_action_link_is_right(open_page, project_id, expected):
    page = open_page()
    page.goto(f"/projects/{project_id}/")
    links = set(_hrefs(page))
    assert expected <= links
    assert not {link for link in links if link.startswith(("tel:", "sms:"))} - expected
    directions = [link for link in links if link.startswith("https://www.google.com/maps/dir/?api=1&destination=")]
    assert directions and any(link.startswith("https://maps.apple.com/?daddr=") for link in links)
    assert not [link for link in links if link.startswith("geo:")]


def test_phone_2_is_left_out_when_missing(open_page):
    page = open_page()
    page.goto("/projects/2145/")
    assert "Phone 2" not in page.inner_text(".customer")


def test_a_hostile_customer_executes_nothing_and_links_nowhere(open_page):
    page = open_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto("/")
    search(page, "2147")
    page.wait_for_selector("#customer-name")
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.locator("#result script, #result img, #result iframe, #result marquee").count() == 0
    assert not [link for link in _hrefs(page) if "javascript" in link.lower()]
    assert not [link for link in _hrefs(page) if link.startswith(("tel:", "sms:", "mailto:"))]
    assert "<script>alert('first')</script>" in page.inner_text("#customer-name")


def test_a_rural_address_is_flagged_before_the_drive(open_page):
    page = open_page("phone")
    page.goto("/projects/2148/")
    assert "This address has no state or postcode" in page.inner_text(".quick")


@pytest.mark.parametrize("viewport", ["phone", "tablet"])
def test_the_primary_actions_are_on_the_first_screen(open_page, viewport):
    page = open_page(viewport)
    page.goto("/projects/2143/")
    height = VIEWPORTS[viewport]["viewport"]["height"]
    for name in ("Call Judy Matherson", "Directions to the site of Judy Matherson (Google Maps"):
        box = page.get_by_role("link", name=re.compile(re.escape(name))).first.bounding_box()
        assert box and box["y"] + box["height"] <= height, (name, box)
    page.goto("/projects/2144/")  # 2143 has no contact time; 2144 does
    best = page.get_by_text("Best time to call:").bounding_box()
    assert best and best["y"] + best["height"] <= height


@pytest.mark.parametrize("role", ["Installers", "Admins"])
def test_a_phones_header_is_one_row_under_a_one_line_demo_banner(open_page, settings, role):
    settings.SOLARPROOF_DEMO = True
    page = open_page("phone", role=role)
    page.goto("/projects/2143/")
    banner = page.locator(".demo-banner").bounding_box()
    header = page.locator(".site-header").bounding_box()
    assert banner["height"] <= 36, banner  # one line
    assert header["height"] <= 56, header  # one row, not three
    for control in [page.locator(".brand"), page.get_by_role("button", name="Sign out"), *page.locator("nav a").all()]:
        box = control.bounding_box()
        assert header["y"] <= box["y"] and box["y"] + box["height"] <= header["y"] + header["height"]
        assert box["height"] >= 44
    assert page.get_by_role("link", name="Run sheet").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_phone_shows_the_site_and_its_warning_before_directions_on_the_first_screen(open_page, settings):
    settings.SOLARPROOF_DEMO = True
    page = open_page("phone")
    page.goto("/projects/2148/")
    quick = page.locator(".quick")
    shown = {
        "name": page.locator("#customer-name"),
        "site address": quick.get_by_text("Lot 12 Back Creek Road, near the old dairy"),
        "warning": quick.locator(".warning"),
        "call": quick.get_by_role("link", name=re.compile("^Call Bazza Kowalski")),
        "directions": quick.get_by_role("link", name=re.compile("^Directions to the site of Bazza Kowalski")),
    }
    boxes = {name: element.bounding_box() for name, element in shown.items()}
    for name, box in boxes.items():
        assert box is not None and box["y"] + box["height"] <= 844, f"{name} is below the first screen: {box}"
    assert boxes["warning"]["y"] + boxes["warning"]["height"] <= boxes["directions"]["y"]
    assert boxes["site address"]["y"] < boxes["warning"]["y"]


@pytest.mark.parametrize("url", ["/", "/projects/2144/", "/projects/2147/", "/projects/2148/", "/projects/9404/"])
def test_nothing_overflows_sideways_at_320_pixels(open_page, url):
    page = open_page("phone", viewport={"width": 320, "height": 640})
    page.goto(url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 320


def test_every_action_is_at_least_44_pixels(open_page):
    page = open_page("phone")
    page.goto("/projects/2144/")
    small = page.evaluate(
        """() => [...document.querySelectorAll('main a[href], main button, main summary, main input, main select')]
            .filter(el => el.offsetParent !== null)
            .map(el => ({el: el.outerHTML.slice(0, 80), box: el.getBoundingClientRect()}))
            .filter(({box}) => box.width < 44 || box.height < 44)
            .map(({el, box}) => `${el} ${Math.round(box.width)}x${Math.round(box.height)}`)"""
    )
    assert small == []


def test_copy_buttons_put_the_value_on_the_clipboard_and_say_so(open_page):
    page = open_page("tablet", permissions=["clipboard-read", "clipboard-write"])
    page.goto("/projects/2143/")
    page.get_by_role("button", name="Copy Judy Matherson's phone 1 number").click()
    assert page.evaluate("navigator.clipboard.readText()") == "0411 549 054"
    expect(page.locator("#copy-status")).to_have_text("Copied 0411 549 054")
    page.get_by_role("button", name="Copy Judy Matherson's site address").click()
    assert page.evaluate("navigator.clipboard.readText()") == "132 Mono Drive, Brisbane, QLD, 4321"
    page.get_by_role("button", name="Copy Judy Matherson's email address").click()
    assert page.evaluate("navigator.clipboard.readText()") == "judymatherson@gmail.com"


def test_save_contact_downloads_a_vcard_that_parses(open_page):
    page = open_page()
    page.goto("/projects/2143/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Save Judy Matherson as a contact (vCard)").click()
    card = vobject.readOne(Path(download.value.path()).read_text())
    assert card.fn.value == "Judy Matherson"
    assert {tel.value for tel in card.contents["tel"]} == {"+61411549054", "1300602452"}
    assert card.email.value == "judymatherson@gmail.com"
    address = card.adr.value
    assert (address.street, address.city, address.region, address.code) == ("132 Mono Drive", "Brisbane", "QLD", "4321")


def test_the_loading_state_shows_and_a_second_submit_does_not_fire(open_page, portal_upstream):
    page = open_page()
    page.goto("/")
    before = portal_upstream.calls(9515)
    search(page, "9515")
    page.wait_for_selector("#lookup-busy", state="visible")
    assert page.locator("#lookup-busy").is_visible()
    assert page.get_by_role("button", name="Look up").is_disabled()
    page.press("#id_project", "Enter")
    page.evaluate("document.querySelector('form.search').requestSubmit()")
    page.wait_for_selector("#customer-name", timeout=10_000)
    assert page.inner_text("#customer-name") == "Sunny Slowpoke"
    page.wait_for_timeout(1800)  # long enough for a second lookup to have landed
    assert portal_upstream.calls(9515) == before + 1
    assert LookupEvent.objects.filter(project_id=9515).count() == 1


def test_the_content_security_policy_breaks_nothing(open_page):
    page = open_page("tablet")
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.on("pageerror", lambda error: violations.append(str(error)))
    response = page.goto("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    search(page, "2143")
    page.wait_for_selector("#customer-name")  # the htmx swap worked under the policy
    page.get_by_text("Email templates").click()
    page.goto("/projects/9404/")
    assert violations == []


def live_regions_saying(page, words: str) -> list[str]:
    """The live regions (alert, status, aria-live) whose text holds these words."""
    return page.evaluate(
        """words => [...document.querySelectorAll('[role=alert], [role=status], [aria-live]')]
            .filter(el => el.textContent.includes(words)).map(el => el.id || el.className)""",
        words,
    )


def test_the_tab_title_address_and_focus_follow_every_swap(open_page):
    page = open_page("desktop")
    page.goto("/")
    expect(page).to_have_title("Customer lookup · Solar Proof staff portal")
    search(page, "2144")
    expect(page.locator("#customer-name")).to_have_text("Marcus Aurelio")
    expect(page).to_have_title("Project 2144 · Solar Proof staff portal")
    expect(page.locator("#customer-name")).to_be_focused()  # not dropped on <body>

    search(page, "21a3")  # a typo: the address no longer names 2144
    expect(page.locator("#project-error")).to_have_text(re.compile("^A project ID is a whole number"))
    expect(page).to_have_url(re.compile(r"/\?project=21a3$"))
    expect(page).to_have_title("Customer lookup · Solar Proof staff portal")
    expect(page.locator("#id_project")).to_be_focused()  # in the box, to correct it
    assert page.locator("#customer-name").count() == 0
    page.reload()  # and reloading shows the same
    expect(page.locator("#project-error")).to_have_text(re.compile("^A project ID is a whole number"))
    assert page.input_value("#id_project") == "21a3" and page.locator("#customer-name").count() == 0

    search(page, "9404")
    expect(page.locator("#result .problem")).to_contain_text("Solar Proof has no project with that ID")
    expect(page).to_have_url(re.compile(r"/projects/9404/$"))
    expect(page).to_have_title("Project 9404 · Solar Proof staff portal")

    page.get_by_role("link", name="Project 2144").click()  # a recent lookup, swapped in too
    expect(page.locator("#customer-name")).to_have_text("Marcus Aurelio")
    expect(page).to_have_title("Project 2144 · Solar Proof staff portal")
    expect(page).to_have_url(re.compile(r"/projects/2144/$"))
    expect(page.locator("#customer-name")).to_be_focused()


def test_each_message_is_read_out_once(open_page):
    page = open_page("desktop")
    page.goto("/projects/2143/")
    search(page, "21a3")
    expect(page.locator("#project-error")).to_be_visible()
    assert live_regions_saying(page, "A project ID is a whole number") == ["project-error"]
    search(page, "9404")
    expect(page.locator("#result .problem")).to_be_visible()
    assert live_regions_saying(page, "Solar Proof has no project with that ID") == ["problem"]
    search(page, "2143")
    expect(page.locator("#announce")).to_have_text("Showing Judy Matherson, project 2143.")
    assert live_regions_saying(page, "Judy Matherson") == ["announce"]


def test_the_admin_pages_get_the_portals_icon_not_a_404(open_page):
    page = open_page("desktop", signed_in=False)
    failed: list[str] = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    page.on("console", lambda message: failed.append(message.text) if message.type == "error" else None)
    page.goto("/admin/login/")  # Django's admin names no icon: the browser asks for /favicon.ico
    icon = page.request.get("/favicon.ico")
    assert icon.status == 200 and icon.url.endswith("/static/favicon.svg")
    assert icon.headers["content-type"].startswith("image/svg+xml")
    page.wait_for_timeout(300)
    assert failed == []


@pytest.mark.parametrize("viewport", ["desktop", "tablet"])
def test_a_visit_in_the_past_keeps_the_forms_row_and_a_page_address(open_page, viewport):
    page = open_page(viewport)
    page.goto("/projects/2143/")
    visit = page.locator("form.visit")

    def layout() -> list[tuple[float, float]]:
        top = visit.bounding_box()["y"]
        controls = [visit.get_by_label(name) for name in ("Date", "Time", "Length")]
        boxes = [control.bounding_box() for control in [*controls, visit.get_by_role("button")]]
        return [(round(box["x"]), round(box["y"] - top)) for box in boxes]

    before = layout()
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    visit.get_by_label("Date").fill(yesterday)
    visit.get_by_label("Time").fill("09:00")
    visit.get_by_role("button", name="Download calendar event").click()

    message = page.locator("#visit-error")
    expect(message).to_have_text("That time has passed: pick a visit date and time still to come.")
    # The address names the page shown (reloading shows the same), not the calendar file.
    assert re.search(r"/projects/2143/\?date=[-0-9]+&time=09%3A00&minutes=60$", page.url)
    expect(visit.get_by_label("Date")).to_have_attribute("aria-describedby", "visit-error")
    # Date, Time, Length and the button stay where they were; the message goes below them all.
    assert layout() == before
    button = visit.get_by_role("button", name="Download calendar event").bounding_box()
    assert message.bounding_box()["y"] >= button["y"] + button["height"]
    page.reload()
    expect(message).to_have_text("That time has passed: pick a visit date and time still to come.")


def test_wording_a_newcomer_reads(open_page, settings):
    settings.SOLARPROOF_DEMO = True
    page = open_page("desktop")
    page.goto("/")
    guide = page.locator(".demo-guide").inner_text()
    for case in ("2149", "9515", "9599"):
        assert case in guide
    search(page, "99999999999999999999")
    expect(page.locator("#project-error")).to_have_text(
        "That number is too large for a project ID: they go up to 4294967295 (10 digits)."
    )
    search(page, "9503")
    expect(page.locator("#result .problem")).to_contain_text("It answered that it cannot serve requests for now.")
    assert "did not answer" not in page.inner_text("#result")
    settings.SOLARPROOF_TIMEOUT = 0.5
    search(page, "9599")
    expect(page.locator("#result .problem")).to_contain_text("It did not answer in time.")

    signed_out = open_page("phone", signed_in=False)
    signed_out.goto("/accounts/login/")
    expect(signed_out.locator(".sign-in .hint").last).to_contain_text("visitor")
