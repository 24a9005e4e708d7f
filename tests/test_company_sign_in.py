"""Signing in with the company account (OpenID Connect), end to end over real HTTP
against the tests' own provider on loopback; roles from the provider; re-checks."""

import os
import subprocess
import sys
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.company_accounts import roles_from_claims
from accounts.models import CompanyAccount
from customers.audit import verify
from customers.models import LookupEvent
from tests.support.company_sessions import expire_company_check
from tests.support.pages import text

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def provider_answer(location: str) -> str:
    """The browser's trip to the provider: where the provider sends it back to."""
    answer = requests.get(location, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = urlparse(answer.headers["Location"])
    assert back.netloc == "testserver"
    return f"{back.path}?{back.query}"


def sign_in(client, next_url: str = ""):
    """Click the button, let the provider approve, follow it back. Returns the callback's answer."""
    start = client.get("/accounts/oidc/start/" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302, text(start)
    return client.get(provider_answer(start["Location"]))


def signed_in_user(client):
    response = client.get("/")
    return response.wsgi_request.user if response.wsgi_request.user.is_authenticated else None


def expire_check(client) -> None:
    expire_company_check(client.cookies["sessionid"].value)


@pytest.fixture
def ivy(identity_provider):
    identity_provider.add_person(
        "entra-oid-1111",
        preferred_username="ivy@example.com.au",
        email="ivy@example.com.au",
        given_name="Ivy",
        family_name="Installer",
        groups=["portal-installers", "all-staff"],
    )
    identity_provider.sign_in_as("entra-oid-1111")
    return identity_provider


# --- the sign-in page ---------------------------------------------------------------


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


# --- the whole flow -----------------------------------------------------------------


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


# The way back from the provider is a redirect chain through another site: browsers send it
# as cross-site, and the provider's origin as the Referer.
FROM_THE_PROVIDER = {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_REFERER": "http://127.0.0.1/"}


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


def test_a_sign_in_begun_by_another_sites_link_ends_on_the_look_up_button(client, ivy, portal_upstream):
    asked_before = portal_upstream.calls(2143)
    start = client.get("/accounts/oidc/start/?next=/projects/2143/", HTTP_SEC_FETCH_SITE="cross-site")
    landed = client.get(provider_answer(start["Location"]), **FROM_THE_PROVIDER)

    page = client.get(landed["Location"], **FROM_THE_PROVIDER)
    assert "has not been looked up yet" in text(page) and "Judy" not in text(page)
    assert not LookupEvent.objects.exists()
    assert portal_upstream.calls(2143) == asked_before


def test_it_asks_for_the_code_with_pkce_state_and_nonce_and_proves_the_verifier(client, ivy):
    sign_in(client)
    asked = ivy.state.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert len(asked["state"]) >= 20 and len(asked["nonce"]) >= 20
    assert asked["scope"] == "openid profile email"
    assert asked["redirect_uri"] == "http://testserver/accounts/oidc/callback/"
    assert "prompt" not in asked
    # The provider refuses a code exchange whose verifier does not match the challenge.
    assert ivy.state.token_requests[-1]["code_verifier"]


def test_the_audit_row_records_a_password_sign_in_as_local(client, sales_user):
    client.post("/accounts/login/", {"username": "sam.sales", "password": "correct-horse-battery"})
    client.get("/projects/2143/")
    assert LookupEvent.objects.get().auth_method == "local"


def test_it_matches_people_on_the_providers_subject_not_their_email(client, ivy):
    sign_in(client)
    first = signed_in_user(client)
    client.post("/accounts/logout/")
    # Renamed at the provider: same person, same portal user, new name and address.
    ivy.state.people["entra-oid-1111"].claims.update(preferred_username="ivy.new@example.com.au", email="ivy.new@x.au")
    sign_in(client)
    renamed = signed_in_user(client)
    assert renamed.pk == first.pk
    assert (renamed.username, renamed.email) == ("ivy.new@example.com.au", "ivy.new@x.au")
    client.post("/accounts/logout/")
    # Someone else who now has Ivy's old address is someone else.
    ivy.add_person("entra-oid-2222", preferred_username="ivy@example.com.au", email="ivy@example.com.au")
    ivy.sign_in_as("entra-oid-2222")
    sign_in(client)
    assert signed_in_user(client).pk != first.pk
    assert CompanyAccount.objects.count() == 2


def test_a_company_account_never_takes_over_a_local_account_with_the_same_name(client, ivy, make_user):
    local = make_user("ivy@example.com.au", "Admins", is_superuser=True)
    sign_in(client)
    user = signed_in_user(client)
    assert user.pk != local.pk
    assert user.username.startswith("ivy@example.com.au+")
    assert not user.is_superuser and [g.name for g in user.groups.all()] == ["Installers"]


def test_a_portal_user_switched_off_by_an_admin_stays_off(client, ivy, settings):
    settings.PORTAL_ACCESS_CONTACT = "the IT service desk"
    sign_in(client)
    user = signed_in_user(client)
    user.is_active = False
    user.save()
    assert signed_in_user(client) is None  # the session ends at once
    refused = sign_in(client)
    assert refused.status_code == 403
    assert "Your portal account has been switched off. Ask the IT service desk." in text(refused)
    assert signed_in_user(client) is None


# --- refused answers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("signature", "The sign-in answer is not signed with Test Provider's key"),
        ("unsigned", "The sign-in answer is not signed with Test Provider's key"),
        ("expired", "The sign-in answer had already expired"),
        ("audience", "The sign-in answer was issued for a different application"),
        ("audience_with_our_azp", "The sign-in answer was issued for a different application"),
        ("nonce", "The sign-in answer does not belong to this sign-in attempt"),
        ("issuer", "The sign-in answer came from an identity provider this portal does not trust"),
    ],
)
def test_it_refuses_an_id_token_that_fails_verification(client, ivy, tamper, message):
    ivy.state.tamper = tamper
    response = sign_in(client, next_url="/projects/2143/")
    assert response.status_code == 400
    assert message in text(response)
    assert "so nothing was signed in" in text(response)
    assert signed_in_user(client) is None
    assert not get_user_model().objects.exists()


def test_it_refuses_a_token_answer_without_an_id_token(client, ivy):
    ivy.state.tamper = "no_id_token"
    response = sign_in(client)
    assert response.status_code == 502
    assert "Test Provider sent no ID token, so nothing was signed in." in text(response)
    assert signed_in_user(client) is None


def test_it_refuses_a_bad_or_replayed_state(client, ivy):
    start = client.get("/accounts/oidc/start/")
    back = provider_answer(start["Location"])
    forged = client.get(back.replace("state=", "state=x"))
    assert forged.status_code == 400
    assert "This sign-in had expired or was already used, so nothing was signed in. Start again." in text(forged)
    assert signed_in_user(client) is None
    assert client.get(back).status_code == 302  # the genuine answer still works, once
    client.post("/accounts/logout/")
    replayed = client.get(back)
    assert replayed.status_code == 400 and signed_in_user(client) is None


def test_it_refuses_a_provider_whose_discovery_names_another_issuer(client, ivy):
    ivy.state.discovery_issuer = "https://login.example.invalid/evil"
    response = client.get("/accounts/oidc/start/")
    assert response.status_code == 502
    assert "answered as a different identity provider than this portal is set up for" in text(response)


def test_an_unreachable_provider_is_a_clear_page(client, ivy, settings):
    settings.OIDC_ISSUER = "http://127.0.0.1:9"
    response = client.get("/accounts/oidc/start/")
    assert response.status_code == 502
    assert "could not get a usable answer from Test Provider to sign you in. Try again in a minute." in text(response)


@pytest.mark.parametrize(
    ("broken", "status", "message"),
    [
        ("discovery", 502, "could not get a usable answer from Test Provider"),
        ("jwks", 400, "The sign-in answer is not signed with Test Provider's key"),
        ("token", 502, "Test Provider sent no ID token, so nothing was signed in."),
    ],
)
def test_a_provider_answering_outside_the_protocol_is_a_clear_page(client, ivy, broken, status, message):
    ivy.state.broken = broken
    start = client.get("/accounts/oidc/start/")
    response = client.get(provider_answer(start["Location"])) if start.status_code == 302 else start
    assert response.status_code == status
    assert message in text(response)
    assert signed_in_user(client) is None


@pytest.mark.parametrize(
    ("label", "name"),
    [("Sign in with Microsoft", "Microsoft"), ("Sign in with your company account", "the sign-in service")],
)
def test_messages_name_the_provider_as_the_button_does(client, ivy, settings, label, name):
    settings.OIDC_BUTTON_LABEL = label
    ivy.state.tamper = "no_id_token"
    assert f"{name[0].upper()}{name[1:]} sent no ID token" in text(sign_in(client))


def test_the_provider_refusing_is_shown_without_its_untrusted_description(client, ivy):
    start = client.get("/accounts/oidc/start/")
    state = parse_qs(urlparse(start["Location"]).query)["state"][0]
    response = client.get(
        "/accounts/oidc/callback/", {"state": state, "error": "access_denied", "error_description": "<b>pwned</b>"}
    )
    assert response.status_code == 400
    assert "You, or your organisation's policy, declined the sign-in." in text(response)
    assert "pwned" not in response.content.decode()


# --- signing out ---------------------------------------------------------------------


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


# --- roles --------------------------------------------------------------------------


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


def test_roles_follow_the_provider_at_every_sign_in(client, ivy, settings):
    ivy.set_groups("entra-oid-1111", ["portal-admins"])
    sign_in(client)
    assert client.get("/history/").status_code == 200
    assert signed_in_user(client).is_staff
    client.post("/accounts/logout/")
    ivy.set_groups("entra-oid-1111", ["portal-sales"])
    sign_in(client)
    assert client.get("/history/").status_code == 403
    assert not signed_in_user(client).is_staff
    assert client.get("/projects/2143/").status_code == 200


def test_entra_app_roles_can_be_the_role_claim(client, ivy, settings):
    settings.OIDC_ROLE_CLAIM = "roles"
    settings.OIDC_ROLE_MAP = {"Portal.Sales": "Sales"}
    ivy.state.people["entra-oid-1111"].claims["roles"] = ["Portal.Sales"]
    sign_in(client)
    assert [g.name for g in signed_in_user(client).groups.all()] == ["Sales"]


def test_without_a_role_map_roles_are_given_in_the_portal_and_kept(client, ivy, settings):
    """Google Workspace's ID tokens carry no groups: the provider says who, the portal says what."""
    settings.OIDC_ROLE_MAP = {}
    sign_in(client)
    user = signed_in_user(client)
    assert client.get("/").status_code == 403
    user.groups.add(Group.objects.get(name="Sales"))
    client.post("/accounts/logout/")
    sign_in(client)
    assert [g.name for g in signed_in_user(client).groups.all()] == ["Sales"]
    assert client.get("/projects/2143/").status_code == 200


def test_it_says_in_the_log_when_entra_left_the_groups_out(ivy, caplog):
    claims = {"sub": "x", "_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph"}}}
    assert roles_from_claims(claims) == set()
    assert "the provider left the groups claim out of the token (too many groups)" in caplog.text


def test_a_role_map_from_the_environment_tolerates_spaces():
    finished = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.OIDC_ROLE_MAP)"],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "solarproof_portal.settings",
            "OIDC_ROLE_MAP": "a=Sales, b = Admins",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.stdout.strip() == "{'a': 'Sales', 'b': 'Admins'}", finished.stderr


# --- re-checks after OIDC_RENEW_SECONDS ---------------------------------------------


def test_a_due_re_check_goes_silently_to_the_provider_and_back_to_the_same_page(client, ivy):
    sign_in(client)
    expire_check(client)
    response = client.get("/projects/2143/")
    assert response.status_code == 302
    asked = parse_qs(urlparse(response["Location"]).query)
    assert response["Location"].startswith(ivy.issuer) and asked["prompt"] == ["none"]
    assert not LookupEvent.objects.exists()  # nothing looked up before the provider answers
    back = client.get(provider_answer(response["Location"]))
    assert back["Location"] == "/projects/2143/"
    assert client.get("/projects/2143/").status_code == 200


def test_htmx_requests_get_hx_redirect_rather_than_a_redirect_swapped_into_the_page(client, ivy, portal_upstream):
    sign_in(client)
    expire_check(client)
    before = portal_upstream.calls(2143)
    response = client.get("/?project=2143", **HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(f"{ivy.issuer}/authorize?")
    assert "prompt=none" in response["HX-Redirect"]
    assert portal_upstream.calls(2143) == before and not LookupEvent.objects.exists()
    # Back from the provider, the page the search was asking for.
    back = client.get(provider_answer(response["HX-Redirect"]))
    assert back["Location"] == "/?project=2143"


def test_a_role_removed_at_the_provider_counts_at_the_next_re_check(client, ivy):
    sign_in(client)
    assert client.get("/projects/2143/").status_code == 200
    ivy.set_groups("entra-oid-1111", [])
    assert client.get("/projects/2144/").status_code == 200  # still within OIDC_RENEW_SECONDS
    expire_check(client)
    client.get(provider_answer(client.get("/projects/2145/")["Location"]))
    assert client.get("/projects/2145/").status_code == 403


def test_a_disabled_account_is_signed_out_at_the_next_re_check(client, ivy):
    sign_in(client)
    ivy.disable("entra-oid-1111")
    expire_check(client)
    refused = client.get(provider_answer(client.get("/projects/2143/")["Location"]))
    assert refused.status_code == 403
    assert "Your sign-in has run out. Sign in again to go on." in text(refused)
    assert signed_in_user(client) is None
    assert not LookupEvent.objects.filter(outcome="found").exists()


def test_a_re_check_answered_with_a_forged_token_signs_the_session_out(client, ivy):
    sign_in(client)
    expire_check(client)
    ivy.state.tamper = "signature"
    refused = client.get(provider_answer(client.get("/projects/2143/")["Location"]))
    assert refused.status_code == 400
    assert signed_in_user(client) is None
    assert not LookupEvent.objects.exists()


def test_a_re_check_that_names_another_person_signs_the_session_out(client, ivy, portal_upstream):
    sign_in(client)
    ivy.add_person("entra-oid-2222", preferred_username="max@example.com.au", groups=["portal-admins"])
    ivy.sign_in_as("entra-oid-2222")  # someone else signed in at the provider, on this browser
    expire_check(client)

    answered = client.get(provider_answer(client.get("/projects/2143/")["Location"]))

    assert answered.status_code == 403
    assert "signed in as someone else" in text(answered)
    assert signed_in_user(client) is None
    assert not get_user_model().objects.filter(username="max@example.com.au").exists()
    assert not LookupEvent.objects.exists()


def test_a_re_check_that_cannot_reach_the_provider_shows_nothing_and_keeps_the_session(client, ivy, settings):
    sign_in(client)
    expire_check(client)
    settings.OIDC_ISSUER = "http://127.0.0.1:9"
    response = client.get("/projects/2143/")
    assert response.status_code == 502
    assert "Your sign-in could not be confirmed" in text(response)
    assert not LookupEvent.objects.exists()
    settings.OIDC_ISSUER = ivy.issuer
    again = client.get("/projects/2143/")
    assert again["Location"].startswith(f"{ivy.issuer}/authorize?")  # still signed in, asked again


# --- password sign-in when LOCAL_LOGIN=superusers -----------------------------------


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
