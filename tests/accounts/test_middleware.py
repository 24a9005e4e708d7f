"""The silent re-check of a company sign-in (accounts/middleware.py): due re-checks,
roles removed or accounts disabled at the provider, forged or foreign answers."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth import get_user_model

from customers.models import LookupEvent
from tests.support.company_sessions import expire_check, provider_answer, sign_in, signed_in_user
from tests.support.pages import text

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


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
