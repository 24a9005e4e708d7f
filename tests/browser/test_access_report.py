"""The customer access report as an admin prints it: one clean A4 portrait document."""

import re
import zlib

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.support.audit import record

pytestmark = pytest.mark.browser

# A4 in PDF points (1/72 inch), as Chromium writes its MediaBox: 595.92 x 842.88.
A4_POINTS = (595.9, 842.9)
# The width the print stylesheet lays out in: 210 mm less 12 mm margins each side, in CSS px.
A4_CONTENT_PX = round((210 - 2 * 12) / 25.4 * 96)


def _pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    """Each page's size in points, from the PDF's own page objects."""
    number = rb"\s*([\d.]+)"
    boxes = re.findall(rb"/Type\s*/Page\b.*?/MediaBox\s*\[" + number * 4 + rb"\s*\]", pdf, re.S)
    if not boxes:  # the page objects may sit in compressed object streams
        inflated = b""
        for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
            try:
                inflated += zlib.decompress(stream)
            except zlib.error:
                continue
        return _pdf_pages(inflated) if inflated and inflated != pdf else []
    return [(float(x1) - float(x0), float(y1) - float(y0)) for x0, y0, x1, y1 in boxes]


def _pdf_title(pdf: bytes) -> str:
    match = re.search(rb"/Title\s*(<[0-9A-Fa-f]+>|\((?:[^)\\]|\\.)*\))", pdf)
    assert match, "the PDF has no title"
    raw = match[1]
    if raw.startswith(b"<"):
        data = bytes.fromhex(raw[1:-1].decode())
        return data[2:].decode("utf-16-be") if data.startswith(b"\xfe\xff") else data.decode("latin-1")
    return raw[1:-1].decode("latin-1")


def test_the_report_prints_as_one_clean_a4_portrait_page_with_company_period_and_customer(
    open_page, make_user, settings
):
    settings.COMPANY_NAME = "Sunny Coast Solar Pty Ltd"
    sales, installer = make_user("sam.sales", "Sales"), make_user("ivy.installer", "Installers")
    record(sales, 2143, customer_id=5001, request_id="req-print-1", reason="Customer called")
    record(installer, 2150, customer_id=5001, request_id="req-print-2")
    record(sales, 2144, customer_id=5002, request_id="req-someone-else")

    page = open_page("desktop", role="Admins")
    page.goto("/history/customers/?project=2150")
    assert page.url.endswith("/history/customers/5001/?project=2150")
    page.set_viewport_size({"width": A4_CONTENT_PX, "height": 1000})
    page.emulate_media(media="print")

    # On paper: the document, none of the portal's controls.
    for hidden in (".site-header", ".report-controls", ".report-actions"):
        assert not page.locator(hidden).is_visible(), hidden
    printed = page.inner_text(".access-report")
    for expected in (
        "Sunny Coast Solar Pty Ltd",
        "Who has seen the details of customer 5001",
        "asked for by project 2150",
        "Period",
        "Generated",
        "req-print-1",
        "req-print-2",
        "Customer called",
    ):
        assert expected in printed, expected
    assert "req-someone-else" not in printed and "5002" not in printed
    # Nothing wider than the paper: the table fits between the margins.
    assert page.evaluate("document.documentElement.scrollWidth") <= A4_CONTENT_PX

    ARTIFACTS.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "screenshots" / "access-report-print.png", full_page=True)
    pdf = page.pdf(format="A4", print_background=False)
    ARTIFACTS.joinpath("access-report.pdf").write_bytes(pdf)
    pages = _pdf_pages(pdf)
    assert len(pages) == 1, pages
    width, height = pages[0]
    assert (round(width, 1), round(height, 1)) == A4_POINTS  # A4, portrait
    assert _pdf_title(pdf).startswith("Access report, customer 5001")
