"""Company sign-in's protocol (accounts/oidc.py): PKCE, state, nonce, and every token,
answer and provider that must be refused, against the tests' own provider on loopback."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth import get_user_model

from tests.support.company_sessions import provider_answer, sign_in, signed_in_user
from tests.support.pages import text

pytestmark = pytest.mark.django_db


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
