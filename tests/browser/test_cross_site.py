"""A link on another site, followed in a real browser, looks nobody up until staff tap."""

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from customers.models import HistoryReview, LookupEvent

pytestmark = pytest.mark.browser


@pytest.fixture
def other_site(portal) -> Iterator[str]:
    """A page on another site (127.0.0.1 is not the live server's localhost) linking to a
    project, and to the history's export."""
    page = (
        f'<!doctype html><title>Offer</title><a id="bait" href="{portal}/projects/2143/">Win a prize</a>'
        f'<a id="export-bait" href="{portal}/history/export.csv?user=ivy.installer">Your report</a>'
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_it_asks_before_looking_up_from_another_sites_link(open_page, other_site, portal_upstream):
    asked_before = portal_upstream.calls(2143)
    page = open_page("phone")
    page.goto(other_site)
    page.click("#bait")

    page.wait_for_selector("h1#confirm-title")
    assert page.inner_text("h1") == "Project 2143"
    assert page.locator("#customer-name").count() == 0
    assert not LookupEvent.objects.exists()
    assert portal_upstream.calls(2143) == asked_before

    page.get_by_role("link", name="Look up project 2143").click()
    page.wait_for_selector("#customer-name")
    assert page.inner_text("#customer-name") == "Judy Matherson"
    assert LookupEvent.objects.get().outcome == "found"


def test_another_sites_link_does_not_download_the_log_through_an_admins_browser(open_page, other_site):
    installer = open_page("desktop")
    installer.goto("/projects/2143/")  # one lookup by ivy.installer, in the log
    page = open_page("desktop", role="Admins")
    downloads = []
    page.on("download", lambda download: downloads.append(download))
    page.goto(other_site)
    page.click("#export-bait")

    page.wait_for_selector("h1#confirm-title")
    assert page.inner_text("h1") == "Export of the lookup history"
    assert not downloads and not HistoryReview.objects.exists()

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Open the export of the lookup history").click()
    assert downloading.value.suggested_filename.startswith("lookup-history-")
    review = HistoryReview.objects.get()
    assert review.username.startswith("ada.admin")
    assert (review.kind, review.detail, review.rows) == ("export", {"user": "ivy.installer"}, 1)
