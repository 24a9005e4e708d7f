"""The history page at a glance on a phone, with the little data a new portal has."""

import pytest
from django.utils import timezone

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_it_shows_one_day_of_lookups_with_a_scale_and_dates_and_tabs_on_one_row(open_page):
    open_page("phone").goto("/projects/2143/")  # one lookup, today: the whole month's data
    page = open_page("phone", role="Admins")
    page.goto("/history/")

    tabs = page.locator(".tabs a")
    assert tabs.count() == 2
    tops = [tabs.nth(index).bounding_box()["y"] for index in range(2)]
    assert tops[0] == tops[1]  # one row, not wrapped
    assert page.evaluate("document.querySelector('.tabs').scrollWidth <= document.querySelector('.tabs').clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    today = timezone.localdate()
    first = today - timezone.timedelta(days=29)
    dates = page.locator(".chart-dates span")
    assert dates.nth(0).inner_text() == f"{first:%a} {first.day} {first:%b}"
    assert dates.nth(1).inner_text() == f"Today, {today:%a} {today.day} {today:%b}"
    assert page.locator(".chart-scale span").all_inner_texts() == ["2", "1", "0"]
    for label in [dates.nth(0), dates.nth(1), page.locator(".chart-scale span").first]:
        assert label.is_visible()

    # The "as a table" toggle stands clear of the chart above and the lists below.
    chart = page.locator(".chart").bounding_box()
    toggle = page.locator(".chart-table summary").bounding_box()
    below = page.locator(".summary-lists").bounding_box()
    assert toggle["y"] - (chart["y"] + chart["height"]) >= 12
    assert below["y"] - (toggle["y"] + toggle["height"]) >= 12
    assert toggle["height"] >= 44

    ARTIFACTS.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "screenshots" / "history-phone.png", full_page=True)
