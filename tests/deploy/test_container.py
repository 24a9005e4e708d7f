"""Production: the container's steps, hardened settings, headers, sign-in lockout."""

import fnmatch
import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from axes.models import AccessAttempt
from django.conf import settings

from tests.support.pages import text
from tests.support.processes import ROOT, RedisServer, container_start, production_env

HTTPS = {"X-Forwarded-Proto": "https"}


def test_the_dockerfile_runs_the_steps_that_ci_runs():
    dockerfile = (ROOT / "Dockerfile").read_text()
    runs = [re.sub(r"^(--\S+ )+", "", run) for run in re.findall(r"^RUN (.+)$", dockerfile, re.M)]
    assert "sh deploy/container-steps.sh install" in runs
    assert "sh deploy/container-steps.sh collectstatic" in runs
    assert 'CMD ["sh", "deploy/container-steps.sh", "start"]' in dockerfile
    # Debian bookworm's own Python (3.11), the minor version CI tests on: a base CI can make.
    assert re.search(r"^ARG BASE_IMAGE=debian:bookworm-slim$", dockerfile, re.M)
    assert sys.version_info[:2] == (3, 11)
    # A numeric, non-root user: Kubernetes' runAsNonRoot can only check a number.
    assert re.search(r"^USER 999:999$", dockerfile, re.M) and "--uid 999" in dockerfile
    assert "/healthz" in re.search(r"^HEALTHCHECK .*\n.*$", dockerfile, re.M)[0]
    # Python once, then a build stage, then a runtime stage without pip or its caches.
    assert re.findall(r"^FROM (.+)$", dockerfile, re.M) == [
        "${BASE_IMAGE} AS python",
        "python AS build",
        "python AS runtime",
    ]
    runtime = dockerfile[dockerfile.index("AS runtime") :]
    assert "python3-venv" not in runtime and "pip-ca" not in runtime  # the CA was the build stage's secret
    # No frontend to fetch from a registry (# syntax=...): the build works offline.
    assert not re.search(r"^#\s*syntax\s*=", dockerfile, re.M | re.I)


@pytest.mark.django_db
@pytest.mark.timeout(600)  # a fresh virtualenv from PyPI, then migrate and start: minutes on a busy machine
def test_the_container_steps_build_and_serve_from_a_clean_virtualenv(tmp_path):
    venv, static_root = tmp_path / "venv", tmp_path / "static"
    steps_env = {**production_env(), "VENV": str(venv), "DJANGO_STATIC_ROOT": str(static_root)}
    steps = ["sh", str(ROOT / "deploy/container-steps.sh")]
    subprocess.run([*steps, "install"], env=steps_env, check=True, timeout=600)  # noqa: S603
    subprocess.run([*steps, "collectstatic"], env=steps_env, check=True, timeout=120)  # noqa: S603
    # Exactly the compiled pins were installed (pip check, in the step, found nothing missing).
    frozen = subprocess.run([str(venv / "bin/pip"), "freeze"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    installed = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1] for line in frozen.split()}
    assert installed == {name: version for name, (version, _) in _pins("requirements.txt").items()}
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed_css = manifest["css/portal.css"]
    assert re.fullmatch(r"css/portal\.[0-9a-f]{12}\.css", hashed_css)
    assert (static_root / (hashed_css + ".gz")).exists()

    database = tmp_path / "portal.sqlite3"
    # Production settings with a real host name: only the probes answer by IP and plain HTTP.
    run_env = {**steps_env, "DATABASE_URL": f"sqlite:///{database}", "DJANGO_ALLOWED_HOSTS": "portal.example.com.au"}
    log = tmp_path / "start.log"
    named = {"Host": "portal.example.com.au"}
    with container_start(run_env, venv=venv, log=log) as url:
        assert requests.get(url + "/healthz", timeout=5).text == "ok"
        ready = requests.get(url + "/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["database"] == "ok"
        assert requests.get(url + "/", timeout=5).status_code == 400  # any other page keeps the host check
        # Without the proxy's header the portal insists on HTTPS.
        plain = requests.get(url + "/", headers=named, allow_redirects=False, timeout=5)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://portal.example.com.au/")
        static = requests.get(
            f"{url}/static/{hashed_css}", headers={**HTTPS, **named, "Accept-Encoding": "gzip"}, timeout=5
        )
        assert static.status_code == 200
        assert static.headers["Content-Encoding"] == "gzip"
        assert "immutable" in static.headers["Cache-Control"] and "max-age=315360000" in static.headers["Cache-Control"]
        assert static.headers["X-Content-Type-Options"] == "nosniff"
    assert "System check identified no issues" in log.read_text()  # check --deploy ran before serving
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry["logger"] == "gunicorn.access"]
    # /healthz is answered by the worker's event loop, before the thread pool and the access
    # log (solarproof_portal/gunicorn_worker.py); /readyz goes through Django and is logged.
    assert {"path": "/readyz", "status": 200} in [{"path": e["path"], "status": e["status"]} for e in access]
    assert "/healthz" not in [entry["path"] for entry in access]
    assert all(entry["request_id"] for entry in access if entry["path"] == "/readyz")


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    # The settings' own checks; the database role's are in test_database_roles.py, with
    # roles of their own (this run's PostgreSQL user is a superuser, and rightly refused).
    env = {**production_env(), "DJANGO_SECURE_SSL_REDIRECT": "true", "DATABASE_URL": f"sqlite:///{tmp_path}/db"}
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
def test_pages_go_out_compressed_to_browsers_that_accept_it(client, sales_user):
    client.force_login(sales_user)
    page = client.get("/projects/2143/", secure=True, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert page["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in page["Vary"]
    html = gzip.decompress(page.content).decode()
    assert "Judy Matherson" in html and len(page.content) < len(html.encode()) / 2
    plain = client.get("/projects/2143/", secure=True)
    assert not plain.has_header("Content-Encoding") and "Judy Matherson" in plain.content.decode()


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


def _sign_in(client, username: str, password: str, address: str):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_one_persons_typos_behind_a_shared_address_lock_out_nobody_else(client, make_user):
    # Behind a proxy with TRUSTED_PROXY_COUNT=0 every sign-in comes from the proxy's address.
    make_user("sam.sales", "Sales")
    make_user("other.person", "Sales")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "sam.sales", "typo", "10.0.0.2")

    assert _sign_in(client, "sam.sales", "correct-horse-battery", "10.0.0.2").status_code == 429
    assert _sign_in(client, "other.person", "correct-horse-battery", "10.0.0.2").status_code == 302


@pytest.mark.django_db
def test_guessing_from_another_address_cannot_lock_the_account_out_everywhere(client, make_user):
    make_user("breakglass", None, is_superuser=True, is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT + 2):
        _sign_in(client, "breakglass", "guess", "203.0.113.9")

    assert _sign_in(client, "breakglass", "correct-horse-battery", "203.0.113.9").status_code == 429
    assert _sign_in(client, "breakglass", "correct-horse-battery", "10.0.0.7").status_code == 302


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


def _env_file(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_compose_gives_each_container_only_its_own_secrets():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert services["portal"]["env_file"] == ".env.production"
    assert services["db"]["env_file"] == ".env.db"
    assert services["redis"]["env_file"] == ".env.redis"
    assert "./deploy/postgres-init:/docker-entrypoint-initdb.d:ro" in services["db"]["volumes"]
    assert '--requirepass "$$REDISCLI_AUTH"' in services["redis"]["command"][-1]
    assert "environment" not in services["portal"]  # REDIS_URL, with its password, comes from the file

    portal, db = _env_file(".env.production.example"), _env_file(".env.db.example")
    redis = _env_file(".env.redis.example")
    assert set(db) == {"POSTGRES_PASSWORD", "PORTAL_OWNER_PASSWORD", "PORTAL_APP_PASSWORD"}
    assert set(redis) == {"REDISCLI_AUTH"}
    assert not {"POSTGRES_PASSWORD", "PORTAL_OWNER_PASSWORD", "PORTAL_APP_PASSWORD"} & set(portal)
    assert portal["DATABASE_URL"] == f"postgres://portal_app:{db['PORTAL_APP_PASSWORD']}@db:5432/portal"
    assert portal["DATABASE_OWNER_URL"] == f"postgres://portal_owner:{db['PORTAL_OWNER_PASSWORD']}@db:5432/portal"
    assert portal["REDIS_URL"] == f"redis://:{redis['REDISCLI_AUTH']}@redis:6379/0"


def test_compose_runs_redis_unprivileged_and_waits_for_postgresql_over_tcp():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    # The command's shell bypasses the image's own drop from root to its redis user.
    assert services["redis"]["command"][0] == "sh" and services["redis"]["user"] == "redis"
    # The first start's temporary server listens on the socket only: healthy means TCP.
    assert "pg_isready -h 127.0.0.1 " in services["db"]["healthcheck"]["test"][-1]
    assert services["portal"]["read_only"] is True  # only the audit volume is writable


def test_redis_url_carries_the_password_a_redis_with_requirepass_asks_for():
    redis = RedisServer(password="s3cret-redis-pw").start()
    probe = "import django; django.setup(); from django.test import Client; print(Client().get('/readyz').json())"
    try:
        answers = {}
        for name, url in (("with", redis.url), ("without", redis.url.replace(":s3cret-redis-pw@", ""))):
            env = {**production_env(), "REDIS_URL": url, "DJANGO_SETTINGS_MODULE": "solarproof_portal.settings"}
            env["DJANGO_ALLOWED_HOSTS"] = "testserver"  # the test client's host
            ran = subprocess.run(  # noqa: S603
                [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
            )
            answers[name] = ran.stdout.strip().splitlines()[-1] if ran.stdout.strip() else ran.stderr
    finally:
        redis.stop()
    assert "'cache': 'ok'" in answers["with"]
    assert "'cache': 'degraded'" in answers["without"]


def _build_context() -> set[str]:
    """The files `docker build .` sends, by .dockerignore's rules: patterns in order, the
    last that matches a path or one of its parent directories decides; ! lets back in."""
    rules = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    sent = set()
    for path in files:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for rule in rules:
            pattern = rule.lstrip("!").strip("/")
            if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
                excluded = not rule.startswith("!")
        if not excluded:
            sent.add(path)
    return sent


def test_the_image_leaves_tests_bench_and_docs_out_and_cannot_rewrite_its_code():
    sent = _build_context()
    assert not [path for path in sent if path.split("/")[0] in ("tests", "bench", "docs", ".ci", ".git")]
    assert not [path for path in sent if path.startswith(".env") and not path.endswith(".example")]
    needed = {"manage.py", "requirements.txt", "deploy/container-steps.sh", "customers/views.py", "templates/base.html"}
    assert needed <= sent
    assert "static/css/portal.css" in sent and "solarproof_portal/gunicorn.conf.py" in sent

    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime = dockerfile[dockerfile.index("AS runtime") :]
    # The code is copied as root and never handed to the user the portal runs as.
    assert re.search(r"^COPY \. \.$", runtime, re.M)
    assert "--chown" not in runtime and "chmod" not in runtime
    assert not re.search(r"chown[^\n]*/app", runtime)
    assert runtime.index("USER 999:999") > max(runtime.rindex("COPY "), runtime.rindex("RUN "))


def _pins(name: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) for each requirement in a compiled file."""
    text = (ROOT / name).read_text()
    pins = {}
    for block in re.split(r"\n(?=[A-Za-z])", text):
        match = re.match(r"([A-Za-z0-9._-]+)==(\S+)", block)
        if match:
            pins[match[1].lower().replace("_", "-")] = (match[2], block.count("--hash=sha256:"))
    return pins


def test_every_runtime_dependency_is_pinned_with_hashes_and_dev_uses_the_same_versions():
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    assert {"django", "gunicorn", "packaging", "urllib3", "cryptography"} <= set(runtime)
    # redis needs it before Python 3.11.3, and the image's Python (Debian bookworm's) is 3.11.2.
    assert "async-timeout" in runtime
    assert all(hashes for _, hashes in runtime.values()) and all(hashes for _, hashes in dev.values())
    assert {name: version for name, (version, _) in dev.items() if name in runtime} == {
        name: version for name, (version, _) in runtime.items()
    }
    direct = [line.split("#")[0].strip() for line in (ROOT / "requirements.in").read_text().splitlines()]
    assert len([line for line in direct if line]) < len(runtime)  # a short top-level list
    assert "--require-hashes" in (ROOT / "deploy/container-steps.sh").read_text()


def test_the_monitoring_profile_scrapes_metrics_with_the_token_and_none_of_the_portals_secrets():
    prometheus = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]  # not started by a plain `docker compose up`
    assert "env_file" not in prometheus and "environment" not in prometheus
    assert "./deploy/prometheus/metrics-token:/etc/prometheus/metrics-token:ro" in prometheus["volumes"]
    job = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())["scrape_configs"][0]
    assert (job["metrics_path"], job["static_configs"][0]["targets"]) == ("/metrics", ["portal:8000"])
    assert job["authorization"] == {"type": "Bearer", "credentials_file": "/etc/prometheus/metrics-token"}
    assert job["http_headers"]["X-Forwarded-Proto"]["values"] == ["https"]  # else the HTTPS redirect
    assert "deploy/prometheus/metrics-token" in (ROOT / ".gitignore").read_text()
