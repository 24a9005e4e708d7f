"""Who a company sign-in is (accounts/company_accounts.py): matched on the provider's
subject, never an email; roles from the provider at every sign-in."""

import os
import subprocess
import sys

import pytest
from django.contrib.auth.models import Group

from accounts.company_accounts import roles_from_claims
from accounts.models import CompanyAccount
from tests.support.company_sessions import sign_in, signed_in_user
from tests.support.pages import text

pytestmark = pytest.mark.django_db


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
