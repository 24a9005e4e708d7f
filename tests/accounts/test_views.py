"""The sign-in pages (accounts/views.py): the password form and the company button, the
way back to the customer, signing out, and break-glass local sign-in."""

from urllib.parse import urlparse

import pytest
from django.contrib.auth import get_user_model

from customers.audit import verify
from customers.models import LookupEvent
from tests.support.company_sessions import provider_answer, sign_in, signed_in_user
from tests.support.pages import text

pytestmark = pytest.mark.django_db

FROM_THE_PROVIDER = {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_REFERER": "http://127.0.0.1/"}


def test_it_shows_only_the_password_form_when_company_sign_in_is_not_set_up(client):
    page = client.get("/accounts/login/")
    assert "Sign in with" not in text(page)
    assert 'name="password"' in page.content.decode()
    assert client.get("/accounts/oidc/start/").status_code == 404


def test_it_offers_the_company_button_first_and_keeps_the_password_form(client, identity_provider):
    page = client.get("/accounts/login/?next=/projects/2143/")
    body = page.content.decode()
    assert "Sign in with Test Provider" in text(page)
    assert 'href="/accounts/oidc/start/?next=/projects/2143/"' in body
    assert body.index("Sign in with Test Provider") < body.index('name="password"')
    assert "Break-glass" not in text(page)


def test_it_signs_in_with_the_mapped_role_and_looks_up_a_customer(client, ivy, portal_upstream):
    landed = sign_in(client, next_url="/projects/2143/")
    assert (landed.status_code, landed["Location"]) == (302, "/projects/2143/")

    page = client.get("/projects/2143/")
    assert page.status_code == 200
    assert "Judy" in text(page)
    assert "ivy@example.com.au" in text(page)  # the header names who is signed in
    user = get_user_model().objects.get(username="ivy@example.com.au")
    assert (user.email, user.first_name, user.last_name) == ("ivy@example.com.au", "Ivy", "Installer")
    assert [group.name for group in user.groups.all()] == ["Installers"]
    assert not user.has_usable_password()
    event = LookupEvent.objects.get()
    assert (event.username, event.outcome, event.auth_method) == ("ivy@example.com.au", "found", "oidc")
    assert verify.verify_chain().ok


def test_a_sign_in_begun_on_the_portal_lands_on_the_customer_though_the_way_back_is_cross_site(client, ivy):
    start = client.get("/accounts/oidc/start/?next=/projects/2143/", HTTP_SEC_FETCH_SITE="same-origin")
    landed = client.get(provider_answer(start["Location"]), **FROM_THE_PROVIDER)

    assert "Judy Matherson" in text(client.get(landed["Location"], **FROM_THE_PROVIDER))
    assert LookupEvent.objects.get().outcome == "found"
    # The portal vouched for that one arrival only: the same link again is another site's.
    assert "has not been looked up yet" in text(client.get("/projects/2143/", **FROM_THE_PROVIDER))
    assert LookupEvent.objects.count() == 1


def test_a_company_sign_in_from_a_sign_in_page_another_site_opened_ends_on_the_look_up_button(client, ivy):
    client.get("/accounts/login/?next=/projects/2143/", HTTP_SEC_FETCH_SITE="cross-site")
    start = client.get("/accounts/oidc/start/?next=/projects/2143/", HTTP_SEC_FETCH_SITE="same-origin")
    landed = client.get(provider_answer(start["Location"]), **FROM_THE_PROVIDER)

    assert "has not been looked up yet" in text(client.get(landed["Location"], **FROM_THE_PROVIDER))
    assert not LookupEvent.objects.exists()
    # Nor did that sign-in leave a vouch behind for the other site's next link.
    assert "has not been looked up yet" in text(client.get(landed["Location"], **FROM_THE_PROVIDER))
    assert not LookupEvent.objects.exists()


def test_a_sign_in_begun_by_another_sites_link_ends_on_the_look_up_button(client, ivy, portal_upstream):
    asked_before = portal_upstream.calls(2143)
    start = client.get("/accounts/oidc/start/?next=/projects/2143/", HTTP_SEC_FETCH_SITE="cross-site")
    landed = client.get(provider_answer(start["Location"]), **FROM_THE_PROVIDER)

    page = client.get(landed["Location"], **FROM_THE_PROVIDER)
    assert "has not been looked up yet" in text(page) and "Judy" not in text(page)
    assert not LookupEvent.objects.exists()
    assert portal_upstream.calls(2143) == asked_before


def test_the_audit_row_records_a_password_sign_in_as_local(client, sales_user):
    client.post("/accounts/login/", {"username": "sam.sales", "password": "correct-horse-battery"})
    client.get("/projects/2143/")
    assert LookupEvent.objects.get().auth_method == "local"


def test_signing_out_also_signs_out_at_the_provider_so_a_shared_tablet_is_clean(client, ivy):
    sign_in(client)
    out = client.post("/accounts/logout/")
    assert out.status_code == 302
    assert out["Location"].startswith(f"{ivy.issuer}/logout?")
    assert signed_in_user(client) is None
    back = urlparse(provider_answer(out["Location"]))
    assert back.path == "/accounts/login/"
    assert ivy.state.signed_in is None
    # The next person's click on the button does not come back as Ivy.
    refused = client.get(provider_answer(client.get("/accounts/oidc/start/")["Location"]))
    assert signed_in_user(client) is None and refused.status_code == 400


def test_signing_out_of_a_password_session_stays_in_the_portal(client, identity_provider, sales_user):
    client.post("/accounts/login/", {"username": "sam.sales", "password": "correct-horse-battery"})
    out = client.post("/accounts/logout/")
    assert out["Location"] == "/accounts/login/"
    assert not identity_provider.state.end_session_requests


def test_someone_with_no_mapped_group_signs_in_but_sees_no_customer_data(client, ivy, portal_upstream):
    ivy.set_groups("entra-oid-1111", ["all-staff"])
    sign_in(client)
    home = client.get("/")
    assert home.status_code == 403
    assert "You are signed in as ivy@example.com.au, but your account has no portal role" in text(home)
    assert "portal-sales (Sales), portal-installers (Installers), portal-admins (Admins)" in text(home)
    before = portal_upstream.calls(2143)
    assert client.get("/projects/2143/").status_code == 403
    assert portal_upstream.calls(2143) == before
    assert LookupEvent.objects.get().outcome == "not_authorised"


def test_it_names_the_providers_group_for_the_role_a_page_needs(client, ivy):
    sign_in(client)  # Ivy is in portal-installers
    response = client.get("/history/")
    assert response.status_code == 403
    page = text(response)
    assert "This page needs the Admins role" in page
    assert "with the Installers role" in page
    assert "to add your company account to portal-admins (Admins)" in page
    assert "portal-sales" not in page


def test_local_sign_in_is_refused_for_non_superusers_when_kept_for_break_glass(
    client, identity_provider, settings, sales_user, make_user
):
    settings.LOCAL_LOGIN = "superusers"
    page = client.get("/accounts/login/")
    assert "Break-glass sign-in (administrators only)" in text(page)
    refused = client.post("/accounts/login/", {"username": "sam.sales", "password": "correct-horse-battery"})
    assert refused.status_code == 200
    assert "staff use “Sign in with Test Provider”" in text(refused)
    assert signed_in_user(client) is None
    make_user("root", None, is_superuser=True, is_staff=True)
    allowed = client.post("/accounts/login/", {"username": "root", "password": "correct-horse-battery"})
    assert allowed.status_code == 302
    assert signed_in_user(client).username == "root"


def test_switching_local_sign_in_off_ends_existing_password_sessions(client, identity_provider, settings, sales_user):
    client.post("/accounts/login/", {"username": "sam.sales", "password": "correct-horse-battery"})
    assert client.get("/").status_code == 200
    settings.LOCAL_LOGIN = "superusers"
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_too_many_failed_sign_ins_lock_the_account_with_a_page_that_says_so(client, sales_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        refused = client.post("/accounts/login/", {"username": "sam.sales", "password": "wrong"})
        assert refused.status_code == 200 and "Please enter a correct username and password" in text(refused)
    assert client.post("/accounts/login/", {"username": "sam.sales", "password": "wrong"}).status_code == 429
    locked = client.post("/accounts/login/", {"username": "sam.sales", "password": "correct-horse-battery"})
    assert locked.status_code == 429
    assert "Sign-in is locked for now" in text(locked)
    assert "ask a portal administrator to release the lock" in text(locked)
    assert "Sign out" not in text(locked)
