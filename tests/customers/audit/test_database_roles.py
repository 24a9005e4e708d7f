"""Least privilege in PostgreSQL: the compose init script's two roles, the start step as the
app's role, and check --deploy refusing a role that could undo the audit log. Each test
makes its own database and roles, with names of its own, and drops them afterwards."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection

from tests.support.processes import ROOT, container_start, production_env

pytestmark = pytest.mark.django_db


@dataclass
class Roles:
    database: str
    owner: str
    app: str
    superuser_url: str
    owner_url: str
    app_url: str


def _server() -> dict[str, str]:
    database = settings.DATABASES["default"]
    return {
        "host": database["HOST"] or "127.0.0.1",
        "port": str(database["PORT"] or 5432),
        "user": database["USER"],
        "password": database["PASSWORD"] or "",
    }


def _url(user: str, password: str, database: str) -> str:
    server = _server()
    return f"postgres://{user}:{password}@{server['host']}:{server['port']}/{database}"


@pytest.fixture
def roles() -> Iterator[Roles]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): the second make test run in .ci/run")
    server, suffix = _server(), uuid.uuid4().hex[:10]
    names = Roles(
        database=f"portal_roles_{suffix}",
        owner=f"portal_owner_{suffix}",
        app=f"portal_app_{suffix}",
        superuser_url="",
        owner_url="",
        app_url="",
    )
    names.superuser_url = _url(server["user"], server["password"], names.database)
    names.owner_url = _url(names.owner, "owner-pw-" + suffix, names.database)
    names.app_url = _url(names.app, "app-pw-" + suffix, names.database)
    admin = psycopg.connect(
        host=server["host"], port=server["port"], user=server["user"], password=server["password"], dbname="postgres"
    )
    admin.autocommit = True
    try:
        admin.execute(f'CREATE DATABASE "{names.database}"')
        subprocess.run(  # noqa: S603 - the compose init script, as the postgres image runs it
            ["sh", str(ROOT / "deploy/postgres-init/10-portal-roles.sh")],  # noqa: S607
            env={
                "PATH": os.environ["PATH"],
                "PGHOST": server["host"],
                "PGPORT": server["port"],
                "PGPASSWORD": server["password"],
                "POSTGRES_USER": server["user"],
                "POSTGRES_DB": names.database,
                "PORTAL_OWNER_ROLE": names.owner,
                "PORTAL_OWNER_PASSWORD": "owner-pw-" + suffix,
                "PORTAL_APP_ROLE": names.app,
                "PORTAL_APP_PASSWORD": "app-pw-" + suffix,
            },
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield names
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{names.database}" WITH (FORCE)')
        for role in (names.app, names.owner):
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


def _env(roles: Roles, static_root: Path, **overrides: str) -> dict[str, str]:
    return production_env(
        DATABASE_URL=roles.app_url,
        DATABASE_OWNER_URL=roles.owner_url,
        DJANGO_ALLOWED_HOSTS="portal.example.com.au",
        DJANGO_STATIC_ROOT=str(static_root),
        DATABASE_CONN_MAX_AGE="0",
        **overrides,
    )


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.timeout(300)  # migrate a new database, start, then several manage.py processes
def test_the_start_step_serves_as_the_app_role_and_passes_its_own_health_check(roles, static_root, tmp_path):
    env = _env(roles, static_root)
    log = tmp_path / "start.log"
    with container_start(env, venv=Path(sys.executable).parent.parent, log=log) as base:
        # Only the probes are exempt: any other page by IP is refused, by name sent to HTTPS.
        assert requests.get(f"{base}/", timeout=5).status_code == 400
        by_name = requests.get(f"{base}/", headers={"Host": "portal.example.com.au"}, allow_redirects=False, timeout=5)
        assert by_name.status_code == 301 and by_name.headers["Location"].startswith("https://")
        assert requests.get(f"{base}/readyz", timeout=5).json() == {"ready": True, "database": "ok", "cache": "ok"}
    started = log.read_text()
    assert "Granted" in started and "System check identified no issues" in started

    # The app's role appends to the audit log through the portal and can do nothing else to it.
    app_env = {k: v for k, v in env.items() if k != "DATABASE_OWNER_URL"}
    # As the app's role: an honest event 400 days old (so prune has work), then a lookup.
    looked_up = _manage(
        {**app_env, "SOLARPROOF_API_URL": settings.SOLARPROOF_API_URL},
        "shell",
        "-c",
        "import datetime; from django.utils import timezone; from django.core.management import call_command; "
        "from django.contrib.auth.models import Group, User; from customers.audit import heads; "
        "from customers.models import LookupEvent; "
        "sam = User.objects.create_user('sam', password='x'); sam.groups.add(Group.objects.get(name='Sales')); "
        "old = LookupEvent(sequence=1, created_at=timezone.now() - datetime.timedelta(days=400), user=sam, "
        "username='sam', project_id=2143, outcome='found', channel='cli', prev_hash=heads.GENESIS); "
        "old.hash = heads.hash_of(old); old.save(force_insert=True); "
        "call_command('lookup_customer', '2143', '--as', 'sam')",
    )
    assert looked_up.returncode == 0, looked_up.stderr
    assert '"surname": "Matherson"' in looked_up.stdout, looked_up.stdout[:300]
    with psycopg.connect(roles.app_url.replace("postgres://", "postgresql://"), autocommit=True) as app:
        for statement in (
            "UPDATE customers_lookupevent SET project_id = 1",
            "DELETE FROM customers_lookupevent",
            "TRUNCATE customers_lookupevent",
            "INSERT INTO customers_auditgate DEFAULT VALUES",
            "ALTER TABLE customers_lookupevent DISABLE TRIGGER ALL",
            "DROP TRIGGER customers_lookupevent_no_change ON customers_lookupevent",
            "UPDATE customers_historyreview SET rows = 0",
            "DELETE FROM customers_auditanchor",
            "CREATE TABLE customers_lookupevent_copy (id int)",
            "CREATE TEMP TABLE customers_auditgate (id int)",  # a gate of its own, found first
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
        ages = app.execute("SELECT now() - created_at > interval '300 days' FROM customers_lookupevent ORDER BY 1")
        assert ages.fetchall() == [(False,), (True,)]

    # Prune goes through the owner; the app's role cannot.
    refused = _manage(app_env, "prune_audit_log", "--older-than-days", "1")
    assert refused.returncode != 0 and "permission denied" in refused.stderr, refused.stdout + refused.stderr[-1500:]
    pruned = subprocess.run(
        ["sh", "deploy/container-steps.sh", "prune", "--older-than-days", "1"],  # noqa: S607
        cwd=ROOT,
        env={**env, "VENV": str(Path(sys.executable).parent.parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pruned.returncode == 0 and "Pruned 1 events" in pruned.stdout, pruned.stderr


@pytest.mark.parametrize(
    ("who", "problem"),
    [
        ("owner", "owns customers_lookupevent"),
        ("superuser", "is a superuser"),
    ],
)
def test_check_deploy_refuses_a_role_that_could_undo_the_audit_log(roles, static_root, who, problem):
    migrated = _manage({**_env(roles, static_root), "DATABASE_URL": roles.owner_url}, "migrate", "--noinput", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    url = roles.owner_url if who == "owner" else roles.superuser_url

    checked = _manage({**_env(roles, static_root), "DATABASE_URL": url}, "check", "--deploy")

    assert checked.returncode != 0
    assert "customers.E001" in checked.stderr and problem in checked.stderr


def test_check_deploy_refuses_an_app_role_granted_too_much(roles, static_root):
    env = _env(roles, static_root)
    assert _manage({**env, "DATABASE_URL": roles.owner_url}, "migrate", "--noinput", "-v0").returncode == 0
    assert _manage(env, "grant_app_privileges").returncode == 0
    app_env = {k: v for k, v in env.items() if k != "DATABASE_OWNER_URL"}
    assert _manage(app_env, "check", "--deploy").returncode == 0

    with psycopg.connect(roles.owner_url.replace("postgres://", "postgresql://"), autocommit=True) as owner:
        owner.execute(f'GRANT DELETE ON customers_historyreview TO "{roles.app}"')
    checked = _manage(app_env, "check", "--deploy")

    assert checked.returncode != 0 and "has DELETE on customers_historyreview" in checked.stderr
