"""WCAG 2.2 AA: zero axe-core violations, with the 2.2 tags so target-size is checked."""

import pytest

from tests.support.axe import axe_violations

pytestmark = pytest.mark.browser

PAGES = {
    "search": ("Installers", "/"),
    "result": ("Installers", "/projects/2144/"),
    "hostile result": ("Installers", "/projects/2147/"),
    "error result": ("Installers", "/projects/9404/"),
    "history": ("Admins", "/history/"),
    "history reviews": ("Admins", "/history/reviews/"),
    # The project's lookup above gives the report a customer: the form redirects to it.
    "customer access report": ("Admins", "/history/customers/?project=2143"),
    "run sheet": ("Installers", "/run-sheet/?projects=2143,9404,2148"),
    "login": (None, "/accounts/login/"),
}


# Every page at 1280, 820 and 390 pixels, in light and dark.
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "tablet", "phone"])
@pytest.mark.parametrize("name", list(PAGES))
def test_no_axe_violations(open_page, settings, name, size, scheme):
    settings.SOLARPROOF_DEMO = True  # with the demo banner and guide, as make run shows them
    role, url = PAGES[name]
    page = open_page(size, role=role, signed_in=role is not None, color_scheme=scheme)
    if role == "Admins":  # something in the history to show
        open_page(size).goto("/projects/2143/")
    page.goto(url)
    page.wait_for_load_state("load")
    assert axe_violations(page) == []


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_no_axe_violations_on_the_company_sign_in_page(open_page, identity_provider, settings, size):
    settings.LOCAL_LOGIN = "superusers"
    page = open_page(size, signed_in=False)
    page.goto("/accounts/login/")
    page.click("summary")  # the break-glass form, opened
    assert page.get_by_role("link", name="Sign in with Test Provider").is_visible()
    assert axe_violations(page) == []


def test_axe_does_report_a_violation(open_page):
    """The check above can fail: an unlabelled field is reported."""
    page = open_page("desktop")
    page.goto("/")
    page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=text>')")
    assert [violation.split(" ")[0] for violation in axe_violations(page)] == ["label"]


def test_every_page_works_from_the_keyboard(open_page):
    page = open_page("desktop")
    page.goto("/")
    page.wait_for_function("() => document.activeElement.id === 'id_project'")  # desktops start in the field
    first = "document.querySelector('a[href], button, input:not([type=hidden]), select, textarea')"
    assert page.evaluate(f"{first}.textContent") == "Skip to main content"  # first in the tab order
    page.evaluate(f"{first}.focus()")
    assert page.locator(".skip-link").bounding_box()["x"] >= 0  # and visible when focused
    page.focus("#id_project")
    page.keyboard.type("2143")
    page.keyboard.press("Enter")
    page.wait_for_selector("#customer-name")
    focused = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate("document.activeElement.getAttribute('aria-label') || document.activeElement.textContent")
        )
    assert any(label and label.startswith("Call Judy Matherson") for label in focused), focused
