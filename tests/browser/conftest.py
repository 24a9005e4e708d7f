"""Browser tests: Playwright driving Debian's Chromium against the live server, with the
sandbox upstream. Skipped, with the reason, where Chromium or Playwright is missing;
REQUIRE_BROWSER_TESTS=1 (set by .ci/run) turns that skip into a failure."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# around it (creating users, reading audit rows) are ordinary synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"

VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "tablet": {"viewport": {"width": 820, "height": 1180}, "has_touch": True, "is_mobile": True},
    "phone": {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True},
}


def _missing() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright (pip install -r requirements-dev.txt)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium at {CHROMIUM} (apt-get install chromium)"
    return ""


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    missing = _missing()
    if missing:
        if os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
            pytest.fail(f"Browser tests are required here but need {missing}.")
        pytest.skip(f"Browser tests skipped: they need {missing}.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def portal(committed_db, live_server, settings) -> str:
    settings.LOOKUP_RATE_LIMIT = (10_000, 60)
    return live_server.url


@pytest.fixture
def open_page(browser, portal, make_user) -> Iterator[Callable[..., object]]:
    """A signed-in page at a viewport: open_page("phone", role="Installers")."""
    contexts = []

    def open_(
        size: str = "desktop",
        *,
        role: str | None = "Installers",
        signed_in: bool = True,
        javascript: bool = True,
        **options: object,
    ):
        context = browser.new_context(base_url=portal, java_script_enabled=javascript, **{**VIEWPORTS[size], **options})
        contexts.append(context)
        if signed_in:
            names = {"Installers": "ivy.installer", "Sales": "sam.sales", "Admins": "ada.admin", None: "nora.norole"}
            user = make_user(f"{names[role]}{len(contexts) if len(contexts) > 1 else ''}", role)
            client = Client()
            client.force_login(user)
            cookie = client.cookies[settings.SESSION_COOKIE_NAME]
            context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": portal}])
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_
    for context in contexts:
        context.close()
