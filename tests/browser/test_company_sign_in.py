"""Signing in with the company account in a real browser, through the tests' provider."""

import re

import pytest

from customers.models import LookupEvent
from tests.support.company_sessions import expire_company_check

pytestmark = pytest.mark.browser


@pytest.fixture
def company(identity_provider):
    identity_provider.add_person(
        "entra-oid-3333", preferred_username="ines@example.com.au", groups=["portal-installers"]
    )
    identity_provider.sign_in_as("entra-oid-3333")
    return identity_provider


def expire_check(page) -> None:
    expire_company_check(next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid"))


def test_the_button_signs_in_with_the_mapped_role_and_the_lookup_follows(open_page, company):
    page = open_page("phone", signed_in=False)
    page.goto("/projects/2143/")
    page.get_by_role("link", name="Sign in with Test Provider").click()

    page.wait_for_selector("#customer-name")
    assert page.url.endswith("/projects/2143/")
    assert page.inner_text("#customer-name") == "Judy Matherson"
    assert "ines@example.com.au" in page.inner_text("header")
    event = LookupEvent.objects.get()
    assert (event.username, event.auth_method) == ("ines@example.com.au", "oidc")


def test_a_due_re_check_during_a_search_lands_on_the_result(open_page, company):
    page = open_page("tablet", signed_in=False)
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with Test Provider").click()
    page.wait_for_selector("#id_project")
    expire_check(page)

    page.fill("#id_project", "2144")
    page.press("#id_project", "Enter")
    page.wait_for_url(re.compile(r"/projects/2144/$"))
    assert page.inner_text("#customer-name") == "Marcus Aurelio"
    assert company.state.authorize_requests[-1]["prompt"] == "none"
    assert LookupEvent.objects.filter(project_id=2144, outcome="found").count() == 1


def test_a_disabled_account_is_sent_to_sign_in_at_the_re_check(open_page, company):
    page = open_page("desktop", signed_in=False)
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with Test Provider").click()
    page.wait_for_selector("#id_project")
    company.disable("entra-oid-3333")
    expire_check(page)

    page.fill("#id_project", "2144")
    page.press("#id_project", "Enter")
    page.wait_for_selector("text=Your sign-in has run out. Sign in again to go on.")
    assert page.get_by_role("link", name="Sign in with Test Provider").is_visible()
    assert page.locator("#customer-name").count() == 0
    assert not LookupEvent.objects.exists()


def test_signing_out_on_a_shared_tablet_signs_out_at_the_provider_too(open_page, company):
    page = open_page("tablet", signed_in=False)
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with Test Provider").click()
    page.wait_for_selector("#id_project")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/accounts/login/(\?state=[^&]+)?$"))
    assert company.state.end_session_requests and company.state.signed_in is None
    assert violations == []
    # The next person's click does not come back signed in as the last person.
    page.get_by_role("link", name="Sign in with Test Provider").click()
    page.wait_for_selector("text=Your sign-in has run out.")
    assert page.locator("#id_project").count() == 0
