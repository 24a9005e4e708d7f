"""Production: the container's steps, hardened settings, headers, sign-in lockout."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from axes.models import AccessAttempt
from django.conf import settings

from tests.support.pages import text
from tests.support.processes import ROOT, gunicorn, production_env

HTTPS = {"X-Forwarded-Proto": "https"}


def test_the_dockerfile_runs_the_steps_that_ci_runs():
    dockerfile = (ROOT / "Dockerfile").read_text()
    runs = re.findall(r"^RUN (.+)$", dockerfile, re.M)
    assert "sh deploy/container-steps.sh install" in runs
    assert "sh deploy/container-steps.sh collectstatic" in runs
    assert 'CMD ["sh", "deploy/container-steps.sh", "start"]' in dockerfile
    base = re.search(r"^ARG PYTHON_IMAGE=python:(\d+)\.(\d+)-slim", dockerfile, re.M)
    assert base and (int(base[1]), int(base[2])) == sys.version_info[:2]
    assert re.search(r"^USER portal$", dockerfile, re.M)
    assert "/healthz" in re.search(r"^HEALTHCHECK .*\n.*$", dockerfile, re.M)[0]
    assert dockerfile.count("FROM ") == 2  # build stage, then a runtime stage without pip's caches


@pytest.mark.django_db
def test_the_container_steps_build_and_serve_from_a_clean_virtualenv(tmp_path):
    venv, static_root = tmp_path / "venv", tmp_path / "static"
    steps_env = {**production_env(), "VENV": str(venv), "DJANGO_STATIC_ROOT": str(static_root)}
    steps = ["sh", str(ROOT / "deploy/container-steps.sh")]
    subprocess.run([*steps, "install"], env=steps_env, check=True, timeout=600)  # noqa: S603
    subprocess.run([*steps, "collectstatic"], env=steps_env, check=True, timeout=120)  # noqa: S603
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed_css = manifest["css/portal.css"]
    assert re.fullmatch(r"css/portal\.[0-9a-f]{12}\.css", hashed_css)
    assert (static_root / (hashed_css + ".gz")).exists()

    database = tmp_path / "portal.sqlite3"
    run_env = {**steps_env, "DATABASE_URL": f"sqlite:///{database}"}
    subprocess.run(  # noqa: S603 - the start step's migrate, then gunicorn below with the same config
        [str(venv / "bin/python"), "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=run_env, check=True
    )
    log = tmp_path / "gunicorn.log"
    with gunicorn(run_env, python=str(venv / "bin/python"), log=log) as url:
        assert requests.get(url + "/healthz", headers=HTTPS, timeout=5).text == "ok"
        ready = requests.get(url + "/readyz", headers=HTTPS, timeout=5)
        assert ready.status_code == 200 and ready.json()["database"] == "ok"
        # Without the proxy's header the portal insists on HTTPS.
        plain = requests.get(url + "/", allow_redirects=False, timeout=5)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
        static = requests.get(f"{url}/static/{hashed_css}", headers={**HTTPS, "Accept-Encoding": "gzip"}, timeout=5)
        assert static.status_code == 200
        assert static.headers["Content-Encoding"] == "gzip"
        assert "immutable" in static.headers["Cache-Control"] and "max-age=315360000" in static.headers["Cache-Control"]
        assert static.headers["X-Content-Type-Options"] == "nosniff"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry["logger"] == "gunicorn.access"]
    assert {"path": "/healthz", "status": 200} in [{"path": e["path"], "status": e["status"]} for e in access]
    assert all(entry["request_id"] for entry in access if entry["path"] == "/readyz")


def test_check_deploy_is_clean_with_production_settings():
    env = {**production_env(), "DJANGO_SECURE_SSL_REDIRECT": "true"}
    finished = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "System check identified no issues (0 silenced)." in finished.stdout


def _security_headers(response) -> None:
    csp = response["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert not re.search(r"https?://", csp)  # no third-party origins
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_pages_and_error_pages_carry_the_security_headers(client, sales_user):
    client.force_login(sales_user)
    page = client.get("/projects/2143/", secure=True)
    _security_headers(page)
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    _security_headers(client.get("/no/such/page/", secure=True))
    _security_headers(client.get("/accounts/login/", secure=True))


@pytest.mark.django_db
def test_the_session_cookie_is_secure_http_only_and_same_site(client, sales_user):
    response = client.post("/accounts/login/", {"username": "sam.sales", "password": "correct-horse-battery"})
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 10 * 3600


@pytest.mark.django_db
def test_repeated_failed_sign_ins_lock_the_account_until_an_admin_releases_it(client, sales_user, caplog):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "sam.sales", "password": "wrong-guess"})
    locked = client.post("/accounts/login/", {"username": "sam.sales", "password": "correct-horse-battery"})
    assert locked.status_code == 429
    assert "Sign-in is locked for now" in text(locked)
    assert "wrong-guess" not in caplog.text and "correct-horse-battery" not in caplog.text
    assert "sam.sales" in caplog.text  # the failures are logged, without the password

    attempt = AccessAttempt.objects.get(username="sam.sales")
    assert attempt.failures_since_start >= settings.AXES_FAILURE_LIMIT
    admin = type(sales_user).objects.create_superuser("boss", password="boss-password-123")
    client.force_login(admin)
    assert "sam.sales" in text(client.get("/admin/axes/accessattempt/"))
    client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert not AccessAttempt.objects.exists()
    client.logout()
    released = client.post("/accounts/login/", {"username": "sam.sales", "password": "correct-horse-battery"})
    assert released.status_code == 302


@pytest.mark.django_db
def test_a_lockout_by_address_covers_other_usernames(client, make_user):
    make_user("other.person", "Sales")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": f"guess{attempt}", "password": "x"}, REMOTE_ADDR="198.51.100.4")
    response = client.post(
        "/accounts/login/",
        {"username": "other.person", "password": "correct-horse-battery"},
        REMOTE_ADDR="198.51.100.4",
    )
    assert response.status_code == 429


def test_logs_are_json_lines_with_the_request_id(tmp_path):
    env = {**production_env(), "DJANGO_LOG_FORMAT": "json"}
    finished = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logging, django; django.setup(); logging.getLogger('customers').warning('hello')",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "solarproof_portal.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = json.loads(finished.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello" and line["level"] == "WARNING" and line["request_id"] == "-"
    assert Path(ROOT / "solarproof_portal/gunicorn.conf.py").exists()


def test_the_worker_timeout_is_the_lookup_budget_plus_a_margin():
    env = {**production_env(), "SOLARPROOF_TIMEOUT": "2.5"}
    gunicorn_bin = str(Path(sys.executable).parent / "gunicorn")
    printed = subprocess.run(  # noqa: S603
        [gunicorn_bin, "--config", "solarproof_portal/gunicorn.conf.py", "--print-config", "solarproof_portal.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    config = dict(re.findall(r"^(\w+)\s+= (.*)$", printed.stdout, re.M))
    assert (config["timeout"], config["graceful_timeout"]) == ("10", "10"), printed.stderr
