"""The reason picker in a real browser: one tap on a tablet looks the customer up with
that reason, with and without JavaScript; the page stays accessible."""

import re

import pytest

from customers.models import LookupEvent
from tests.support.axe import axe_violations

pytestmark = pytest.mark.browser


@pytest.fixture
def reasons_required(settings):
    settings.LOOKUP_REASON = "required"


def test_one_tap_on_a_reason_shows_the_customer_and_records_why(open_page, reasons_required):
    page = open_page("tablet")
    page.goto("/")
    page.evaluate("window.notReloaded = true")
    page.fill("#id_project", "2143")
    chip = page.get_by_role("button", name="Customer called")
    box = chip.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 44  # a comfortable target for a thumb
    chip.tap()
    page.wait_for_selector("#customer-name")
    assert page.inner_text("#customer-name") == "Judy Matherson"
    assert page.evaluate("window.notReloaded") is True  # swapped in place by htmx
    assert list(LookupEvent.objects.values_list("project_id", "reason")) == [(2143, "Customer called")]


def test_without_a_reason_the_page_asks_for_one_and_looks_nothing_up(open_page, reasons_required):
    page = open_page("tablet")
    page.goto("/")
    page.fill("#id_project", "2143")
    page.press("#id_project", "Enter")
    page.wait_for_selector("#reason-error")
    assert "tap a reason, or type one" in page.inner_text("#reason-error")
    assert page.locator("#customer-name").count() == 0
    assert not LookupEvent.objects.exists()
    page.fill("#id_reason_other", "Warranty claim")
    page.press("#id_reason_other", "Enter")
    page.wait_for_selector("#customer-name")
    assert list(LookupEvent.objects.values_list("reason", flat=True)) == ["Warranty claim"]


def test_the_picker_works_without_javascript(open_page, reasons_required):
    page = open_page("phone", javascript=False)
    page.goto("/")
    page.fill("#id_project", "2144")
    page.get_by_role("button", name="Quote follow-up").click()
    page.wait_for_url(re.compile(r"/projects/2144/\?reason=quote_follow_up$"))
    assert page.inner_text("#customer-name") == "Marcus Aurelio"
    assert list(LookupEvent.objects.values_list("reason", flat=True)) == ["Quote follow-up"]


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_picker_has_no_axe_violations(open_page, reasons_required, size):
    page = open_page(size)
    page.goto("/projects/2143/")  # the page that asks for the reason, with its error
    page.wait_for_selector("#reason-error")
    assert axe_violations(page) == []
