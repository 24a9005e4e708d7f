"""An admin filters the history with the form, exports, and the file holds exactly the
rows on screen; one press sends one request and writes one review; Back goes back."""

import csv
import io
from pathlib import Path

import pytest

from customers.audit import log as audit_log
from customers.models import HistoryReview

pytestmark = pytest.mark.browser


@pytest.fixture
def seventy_five_lookups(make_user) -> None:
    """The issue's picture: 75 rows, 14 of them by sales of project 2143."""
    sales, ivy = make_user("sales", "Sales"), make_user("ivy", "Installers")
    plan = [(sales, 2143)] * 14 + [(sales, 2144)] * 11 + [(ivy, 2143)] * 30 + [(ivy, 1001)] * 20
    for user, project in plan:
        audit_log.record_lookup(user=user, project_id=project, outcome="found", channel="web")


def _views() -> list[dict]:
    return list(HistoryReview.objects.filter(kind="view").order_by("sequence").values("detail", "rows"))


def test_the_export_holds_the_filtered_rows_and_each_submit_is_one_request(open_page, seventy_five_lookups):
    page = open_page("desktop", role="Admins")
    asked = []
    page.on("request", lambda request: asked.append(request.url) if "/history/?" in request.url else None)
    page.goto("/history/")
    assert page.locator("table.history tbody tr").count() == 50  # a page of the 75

    page.fill("#id_user", "sales")
    page.press("#id_user", "Enter")
    page.wait_for_selector("h2.table-title:has-text('Lookups by sales')")
    page.fill("#id_project", "2143")
    page.click("form.filters button[type=submit]")  # leaving the field first fired "change" as well
    page.wait_for_selector("h2.table-title:has-text('Lookups of project 2143 by sales')")
    assert page.locator("table.history tbody tr").count() == 14
    page.wait_for_timeout(500)  # time for a second request, were one sent

    assert len(asked) == 2, asked
    assert [view["detail"] for view in _views()] == [{}, {"user": "sales"}, {"user": "sales", "project": 2143}]
    assert _views()[-1]["rows"] == 14

    with page.expect_download() as downloading:
        page.click("#export-link")
    exported = list(csv.reader(io.StringIO(Path(downloading.value.path()).read_text(encoding="utf-8"))))
    header, rows = exported[0], exported[1:]
    assert header[:5] == ["sequence", "time", "username", "project_id", "outcome"]
    assert len(rows) == 14
    assert {(row[2], row[3]) for row in rows} == {("sales", "2143")}
    export = HistoryReview.objects.get(kind="export")
    assert (export.detail, export.rows) == ({"user": "sales", "project": 2143}, 14)
    # The record of reviews says so in words.
    page.goto("/history/reviews/")
    exported_row = page.locator("table.history tbody tr", has_text="Exported CSV")
    assert "project=2143" in exported_row.inner_text() and "user=sales" in exported_row.inner_text()
    assert exported_row.locator("td").nth(4).inner_text() == "14"

    page.go_back()
    page.wait_for_selector("h2.table-title:has-text('Lookups of project 2143 by sales')")
    page.go_back()  # one press of Back per filter: the previous one, not the same one again
    page.wait_for_selector("h2.table-title:has-text('Lookups by sales')")
    assert "project=2143" not in page.url
    assert page.input_value("#id_user") == "sales" and page.input_value("#id_project") == ""
    assert page.locator("table.history tbody tr").count() == 25


def test_a_filter_set_from_the_table_shows_in_the_form_and_its_export(open_page, seventy_five_lookups):
    page = open_page("desktop", role="Admins")
    page.goto("/history/")
    page.fill("#id_project", "2143")
    page.press("#id_project", "Enter")
    page.wait_for_selector("h2.table-title:has-text('Everyone who looked at project 2143')")

    page.locator("table.history tbody tr", has_text="ivy").first.locator("a", has_text="ivy").click()
    page.wait_for_selector("h2.table-title:has-text('Lookups by ivy')")
    # The form says what the rows are: Show again gives the same rows, not project 2143's.
    assert page.input_value("#id_user") == "ivy" and page.input_value("#id_project") == ""
    assert "user=ivy" in page.get_attribute("#export-link", "href")

    page.fill("#id_project", "abc")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("text=Check the filters above.")
    # The field that is wrong is named in the form, as on a full page load.
    assert page.locator("form.filters .field-error").count() == 1
    assert page.input_value("#id_project") == "abc"
