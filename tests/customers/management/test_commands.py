import json
import socket
import subprocess
import sys
import time

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from customers.models import LookupEvent

pytestmark = pytest.mark.django_db


def test_lookup_customer_prints_json_and_audits_as_cli(sales_user, capsys):
    call_command("lookup_customer", "2143", "--as", "sam.sales")
    payload = json.loads(capsys.readouterr().out)
    assert payload["customer"]["first_name"] == "Judy"
    assert payload["customer"]["customer_id"] == 79298
    event = LookupEvent.objects.get()
    assert (event.channel, event.username, event.outcome) == ("cli", "sam.sales", "found")


def test_lookup_customer_reports_errors_plainly(sales_user, no_role_user):
    with pytest.raises(CommandError, match="project_not_found: Solar Proof has no project"):
        call_command("lookup_customer", "9404", "--as", "sam.sales")
    with pytest.raises(CommandError, match="no role"):
        call_command("lookup_customer", "2143", "--as", "nora.norole")
    with pytest.raises(CommandError, match="No portal user named 'ghost'"):
        call_command("lookup_customer", "2143", "--as", "ghost")
    with pytest.raises(CommandError, match="Not a project ID"):
        call_command("lookup_customer", "abc", "--as", "sam.sales")
    assert list(LookupEvent.objects.values_list("outcome", flat=True).order_by("id")) == [
        "project_not_found",
        "not_authorised",
    ]


def test_seed_demo_refuses_outside_demo_mode(settings, django_user_model):
    settings.DEBUG = True
    with pytest.raises(CommandError, match="only runs in demo mode"):
        call_command("seed_demo")
    assert not django_user_model.objects.exists()


def test_seed_demo_refuses_with_debug_off_even_in_demo_mode(settings, django_user_model):
    settings.DEBUG, settings.SOLARPROOF_DEMO = False, True
    with pytest.raises(CommandError, match="only runs with DJANGO_DEBUG on"):
        call_command("seed_demo")
    assert not django_user_model.objects.exists()


def test_seed_demo_creates_the_demo_users_with_their_roles(settings, django_user_model, capsys):
    settings.DEBUG, settings.SOLARPROOF_DEMO = True, True
    call_command("seed_demo")
    call_command("seed_demo")  # twice is harmless
    assert "sales      password sales-demo-2143" in capsys.readouterr().out
    assert django_user_model.objects.get(username="sales").has_perm("customers.look_up_customer")
    assert django_user_model.objects.get(username="admin").has_perm("customers.view_lookupevent")
    assert not django_user_model.objects.get(username="visitor").has_perm("customers.look_up_customer")


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def test_run_sandbox_serves_the_contract_over_http():
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "run_sandbox", "--port", str(port), "--latency-ms", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "Solar Proof sandbox on" in server.stdout.readline()
        url = f"http://127.0.0.1:{port}/apidata.php"
        params = {"action": "getcustomerofproject", "project_id": "2143", "api_key": "sandbox-demo-key"}
        answer = requests.get(url, params=params, timeout=5)
        assert answer.json()["Customer"]["firstName"] == "Judy"
        wrong = requests.get(url, params={**params, "api_key": "nope"}, timeout=5)
        assert (wrong.status_code, wrong.json()["code"]) == (401, "INVALID_API_KEY")
    finally:
        server.terminate()
        server.wait(5)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"DJANGO_DEBUG": "false"}, "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off."),
        (
            {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "x" * 50},
            "SOLARPROOF_API_KEY must be set (or SOLARPROOF_DEMO=true for demo data).",
        ),
        ({"DJANGO_DEBUG": "true", "LOOKUP_RATE_LIMIT": "lots"}, "LOOKUP_RATE_LIMIT must look like 60/m"),
        ({"DJANGO_DEBUG": "true", "SOLARPROOF_TIMEOUT": "-1"}, "SOLARPROOF_TIMEOUT must be greater than zero."),
        ({"DJANGO_DEBUG": "true", "LOOKUP_CACHE_SECONDS": "soon"}, "LOOKUP_CACHE_SECONDS must be a whole number."),
        (
            {"DJANGO_DEBUG": "true", "OIDC_ISSUER": "https://login.example"},
            "OIDC_CLIENT_ID must be set when OIDC_ISSUER",
        ),
        (
            {
                "DJANGO_DEBUG": "true",
                "OIDC_ISSUER": "http://login.example",
                "OIDC_CLIENT_ID": "a",
                "OIDC_CLIENT_SECRET": "b",
            },
            "OIDC_ISSUER must be an https:// address, not 'http://login.example'.",
        ),
        ({"DJANGO_DEBUG": "true", "OIDC_ROLE_MAP": "portal-x=Owners"}, "OIDC_ROLE_MAP may grant Sales, Installers or"),
        ({"DJANGO_DEBUG": "true", "LOCAL_LOGIN": "superusers"}, "LOCAL_LOGIN=superusers needs OIDC_ISSUER"),
        ({"DJANGO_DEBUG": "true", "LOCAL_LOGIN": "nobody"}, "LOCAL_LOGIN must be all or superusers, not 'nobody'."),
        ({"DJANGO_DEBUG": "true", "OIDC_RENEW_SECONDS": "5"}, "OIDC_RENEW_SECONDS must be at least 60"),
        (
            {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "x" * 50, "SOLARPROOF_API_KEY": "k"},
            "AUDIT_SIGNING_KEY must be set when DJANGO_DEBUG is off (python manage.py audit_keygen prints a pair",
        ),
        (
            {"DJANGO_DEBUG": "true", "AUDIT_SIGNING_KEY": "an-old-hmac-secret"},
            "AUDIT_SIGNING_KEY must be standard base64 of 32 bytes",
        ),
        ({"DJANGO_DEBUG": "true", "AUDIT_VERIFY_KEYS": "AAAA"}, "AUDIT_VERIFY_KEYS must be standard base64 of 32"),
        ({"DJANGO_DEBUG": "true", "LOOKUP_REASON": "always"}, "LOOKUP_REASON must be off, optional or required"),
        (
            {"DJANGO_DEBUG": "true", "SOLARPROOF_API_URL": "http://solarproof.com.au/apidata.php"},
            "SOLARPROOF_API_URL must be an https:// address (http:// only to this machine)",
        ),
        (
            {"DJANGO_DEBUG": "true", "SOLARPROOF_API_URL": "http://127.0.0.1.example.com/apidata.php"},
            "SOLARPROOF_API_URL must be an https:// address",
        ),
        (
            {"DJANGO_DEBUG": "true", "LOOKUP_LINK_ORIGINS": "https://solarproof.com.au/projects/"},
            "LOOKUP_LINK_ORIGINS must list origins like https://solarproof.com.au",
        ),
    ],
)
def test_start_up_stops_with_one_line_naming_the_variable(environment, message):
    clean = {"PATH": "/usr/bin:/bin", **environment}
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "manage.py", "check"], env=clean, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode != 0
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert message in lines[0]
    assert time.monotonic() - started < 60


def test_with_company_sign_in_the_form_action_policy_allows_the_providers_sign_out():
    environment = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_DEBUG": "true",
        "OIDC_ISSUER": "https://login.microsoftonline.com/tenant-id/v2.0",
        "OIDC_CLIENT_ID": "id",
        "OIDC_CLIENT_SECRET": "secret",
        "DJANGO_SETTINGS_MODULE": "solarproof_portal.settings",
    }
    finished = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings as s; print(s.CONTENT_SECURITY_POLICY['DIRECTIVES'])"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "'form-action': [\"'self'\", 'https://login.microsoftonline.com']" in finished.stdout, finished.stderr


def test_demo_mode_starts_without_secrets_when_debug_is_on():
    finished = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={"PATH": "/usr/bin:/bin", "DJANGO_DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr


def test_the_portal_does_not_serve_with_only_the_auditors_public_key():
    """An auditor's machine may verify with AUDIT_VERIFY_KEYS alone; the portal signs as it serves."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "x" * 50,
        "SOLARPROOF_API_KEY": "k",
        "AUDIT_VERIFY_KEYS": "1gjkCzBnqJpov274HgdLdd7n43pUidgj2Fri1oBSTMo=",
    }
    checked = subprocess.run(
        [sys.executable, "manage.py", "check"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    served = subprocess.run(
        [sys.executable, "-c", "import solarproof_portal.wsgi"], env=environment, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert served.returncode != 0
    assert served.stderr.strip().splitlines()[-1] == (
        "solarproof-portal: configuration error: AUDIT_SIGNING_KEY must be set to serve the portal."
    )


@pytest.mark.parametrize(
    ("api_url", "link_origins"),
    [
        ("https://solarproof.com.au/apidata.php", "['https://solarproof.com.au']"),
        ("http://127.0.0.1:8001/apidata.php", "['http://127.0.0.1:8001']"),
        ("http://[::1]:8001/apidata.php", "['http://[::1]:8001']"),
        ("http://localhost/apidata.php", "['http://localhost']"),
    ],
)
def test_it_accepts_https_or_loopback_for_the_api_and_trusts_its_origins_links(api_url, link_origins):
    environment = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_DEBUG": "true",
        "SOLARPROOF_API_URL": api_url,
        "DJANGO_SETTINGS_MODULE": "solarproof_portal.settings",
    }
    finished = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings as s; print(s.LOOKUP_LINK_ORIGINS)"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.stdout.strip() == link_origins, finished.stderr
