"""The journeys again, against the portal configured exactly as `make run` configures it
(DJANGO_DEBUG on, demo mode, the in-process sandbox, Django's development server): what a
newcomer runs first. With DEBUG on, django-htmx's debug script is on the page too; it once
replaced the whole document with every 400/403/404 answer."""

import re

import pytest

from customers.management.commands.seed_demo import DEMO_USERS
from tests.browser.conftest import ARTIFACTS, VIEWPORTS

pytestmark = pytest.mark.browser

PASSWORDS = {username: password for username, password, _, _ in DEMO_USERS}


@pytest.fixture
def demo_page(browser, make_run_server):
    url, _ = make_run_server
    contexts = []

    def open_(username: str = "sales", size: str = "desktop"):
        context = browser.new_context(base_url=url, **VIEWPORTS[size])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORDS[username])
        page.press("#id_password", "Enter")
        page.wait_for_url(re.compile(r"/$"))
        return page

    yield open_
    for context in contexts:
        context.close()


def search(page, typed: str) -> int:
    """Type into the search box, press Enter; the status of the answer htmx swapped in."""
    with page.expect_response(lambda response: "project=" in response.url) as answer:
        page.fill("#id_project", typed)
        page.press("#id_project", "Enter")
    page.wait_for_selector("#lookup-busy", state="hidden")
    return answer.value.status


def assert_whole_styled_page(page, message: str) -> None:
    """Stylesheet applied, title, demo banner, header with its navigation, the search form,
    no "Asking Solar Proof…" left behind, and the message exactly once in the answer."""
    assert page.locator("link[rel=stylesheet][href$='portal.css']").count() == 1
    banner_colour = page.eval_on_selector(".demo-banner", "el => getComputedStyle(el).backgroundColor")
    assert banner_colour not in ("rgba(0, 0, 0, 0)", "transparent")  # the stylesheet is applied
    assert page.title().endswith("· Solar Proof staff portal") and len(page.title()) > 30
    assert page.locator(".site-header nav a", has_text="Look up").is_visible()
    assert page.locator("#id_project").is_visible()
    assert page.get_by_role("button", name="Look up").is_enabled()
    assert not page.locator("#lookup-busy").is_visible()
    assert page.locator("html").count() == 1 and page.locator("body .site-header").count() == 1
    # The answer area (form and result); the recent lookups below list past answers.
    shown = page.evaluate(
        """() => { const answer = document.querySelector('#lookup').cloneNode(true);
                   answer.querySelectorAll('.visually-hidden, #lookup-busy').forEach(el => el.remove());
                   return answer.textContent; }"""
    )
    assert shown.count(message) == 1, shown
    assert page.locator("main [role=alert]:visible").count() <= 1


ANSWERS = [
    ("9404", 404, "Solar Proof has no project with that ID."),
    ("abc", 400, "A project ID is a whole number such as 2143"),
    ("-1", 400, "A project ID is a whole number such as 2143"),
    ("1037", 404, "Solar Proof has no project with that ID."),
    ("9405", 404, "no customer is assigned to it yet"),
    ("9403", 403, "Solar Proof does not allow the portal to see this project."),
    ("9503", 503, "It answered that it cannot serve requests for now."),
    ("2143", 200, "Project 2143 · Solar Proof customer 79298"),
]


@pytest.mark.parametrize(("typed", "status", "message"), ANSWERS, ids=[typed for typed, _, _ in ANSWERS])
def test_it_answers_each_search_with_a_whole_styled_page(demo_page, typed, status, message):
    page = demo_page()
    page.evaluate("window.notReloaded = true")
    assert search(page, typed) == status  # the status scripts and monitoring rely on
    assert page.evaluate("window.notReloaded") is True  # swapped in place
    assert_whole_styled_page(page, message)
    ARTIFACTS.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "screenshots" / f"make-run-{typed}.png")


def test_it_keeps_back_and_forward_whole_after_error_answers(demo_page):
    page = demo_page("installer", "phone")
    assert search(page, "9404") == 404
    assert search(page, "abc") == 400
    assert search(page, "2143") == 200
    assert page.url.endswith("/projects/2143/")

    # htmx keeps no snapshots (they would hold customers' details), so each step through
    # history loads its page again from the server: whole pages, 4xx status and all. The
    # typo has an address of its own, so Back shows it again rather than another page.
    step(page, page.go_back)
    assert page.url.endswith("/?project=abc")
    assert_whole_styled_page(page, "A project ID is a whole number such as 2143")
    step(page, page.go_back)
    assert page.url.endswith("/projects/9404/")
    assert_whole_styled_page(page, "Solar Proof has no project with that ID.")
    step(page, page.go_back)
    assert re.search(r"/\?q=9404$", page.url)
    assert page.input_value("#id_project") == "9404"
    step(page, page.go_forward)
    assert page.url.endswith("/projects/9404/")
    assert_whole_styled_page(page, "Solar Proof has no project with that ID.")
    step(page, page.go_forward)
    assert page.url.endswith("/?project=abc")
    step(page, page.go_forward)
    assert page.url.endswith("/projects/2143/")
    assert_whole_styled_page(page, "Project 2143 · Solar Proof customer 79298")


def step(page, move) -> None:
    """Back or Forward, then wait until a new document has loaded in full."""
    page.evaluate("window.previousDocument = true")
    with page.expect_event("load"):
        move()
    assert page.evaluate("window.previousDocument") is None


@pytest.mark.parametrize("path", ["/projects/-1/", "/projects/abc/"])
def test_it_shows_its_own_page_for_a_path_that_is_not_a_project_id(demo_page, path):
    page = demo_page()
    response = page.goto(path)
    assert response.status == 404
    assert "URLconf" not in page.content()
    assert_whole_styled_page(page, "A project ID is a whole number such as 2143")


def test_it_logs_an_expected_refusal_as_one_line(demo_page, make_run_server):
    _, log = make_run_server
    page = demo_page("installer")
    before = log.read_text()
    response = page.goto("/history/")
    assert response.status == 403
    assert "This page needs the Admins role" in page.inner_text("main")
    page.wait_for_timeout(200)  # the server writes its lines after answering
    written = log.read_text()[len(before) :]
    assert written.count("Forbidden (Permission denied): /history/") == 1, written
    assert "Traceback" not in written
