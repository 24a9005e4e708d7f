"""Least privilege in PostgreSQL: the compose init script's two roles, the start step as the
app's role, and check --deploy refusing a role that could undo the audit log. Each test
makes its own database and roles, with names of its own, and drops them afterwards."""

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection

from customers.audit import chain
from tests.support.database_roles import Roles, owner_and_app_roles
from tests.support.processes import ROOT, container_start, production_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def roles() -> Iterator[Roles]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): the second make test run in .ci/run")
    with owner_and_app_roles() as names:
        yield names


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
    # As the owner (the app's role may not choose a time): an event 400 days old, so prune
    # has work; then, as the app's role, a lookup, appended through the owner's function.
    seeded = _manage(
        {**app_env, "DATABASE_URL": roles.owner_url},
        "shell",
        "-c",
        "import datetime; from django.utils import timezone; "
        "from django.contrib.auth.models import Group, User; from customers.audit import heads; "
        "from customers.models import LookupEvent; "
        "sam = User.objects.create_user('sam', password='x'); sam.groups.add(Group.objects.get(name='Sales')); "
        "old = LookupEvent(sequence=1, created_at=timezone.now() - datetime.timedelta(days=400), user=sam, "
        "username='sam', project_id=2143, outcome='found', channel='cli', prev_hash=heads.GENESIS); "
        "old.hash = heads.hash_of(old); old.save(force_insert=True)",
    )
    assert seeded.returncode == 0, seeded.stderr
    looked_up = _manage(
        {**app_env, "SOLARPROOF_API_URL": settings.SOLARPROOF_API_URL},
        "lookup_customer",
        "2143",
        "--as",
        "sam",
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


# --- attacks on the log, as the app's role and with the owner's rights ---------------------
# One database for these, migrated by its owner and granted as the start step grants; they
# run in file order and the last one leaves the log broken on purpose.


@pytest.fixture(scope="module")
def granted(static_root) -> Iterator[tuple[Roles, dict[str, str]]]:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): the second make test run in .ci/run")
    with owner_and_app_roles() as roles:
        env = _env(roles, static_root)
        migrated = _manage({**env, "DATABASE_URL": roles.owner_url}, "migrate", "--noinput", "-v0")
        assert migrated.returncode == 0, migrated.stderr
        assert _manage(env, "grant_app_privileges").returncode == 0
        with roles.connect(roles.app_url) as app:
            app.execute(
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
                "is_active, date_joined) VALUES ('!', false, 'sam', '', '', '', false, true, now())"
            )
        yield roles, {k: v for k, v in env.items() if k != "DATABASE_OWNER_URL"}


APPEND = (
    "SELECT * FROM customers_lookupevent_append((SELECT id FROM auth_user WHERE username = 'sam'), 'sam', %s, "
    "'found', NULL, 'web', '10.1.2.3', '', '', 5, false, NULL, NULL, 'Sales')"
)
COLUMNS = (*chain.LOOKUP_FIELDS, *chain.LOOKUP_LATER_FIELDS, "hash")


def _chained_row(app: psycopg.Connection, at: datetime) -> dict:
    """The next row of the chain, correctly hashed with the project's own code, at a time of
    the writer's choosing: what plain INSERT allowed."""
    sequence, prev_hash = app.execute(
        "SELECT sequence, hash FROM customers_lookupevent ORDER BY sequence DESC LIMIT 1"
    ).fetchone()
    row = {
        "sequence": sequence + 1, "created_at": at, "user_id": 1, "username": "sam", "project_id": 2143,
        "outcome": "found", "customer_id": None, "channel": "web", "ip": None, "user_agent": "", "request_id": "",
        "duration_ms": 0, "cache_hit": False, "prev_hash": prev_hash, "auth_method": None, "reason": None, "role": None,
    }  # fmt: skip
    return {**row, "hash": chain.lookup_hash(row)}


def test_the_app_role_cannot_append_a_row_stamped_2001_that_a_routine_prune_would_erase_today_with(granted):
    roles, app_env = granted
    with roles.connect(roles.app_url) as app:
        for project in (2143, 2144, 2145):  # today's lookups, through the owner's function
            app.execute(APPEND, [project])
        backdated = _chained_row(app, datetime(2001, 1, 1, tzinfo=UTC))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(
                f"INSERT INTO customers_lookupevent ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})",
                [backdated[name] for name in COLUMNS],
            )
    pruned = _manage({**app_env, "DATABASE_URL": roles.owner_url}, "prune_audit_log", "--older-than-days", "365")
    assert pruned.returncode == 0 and "Nothing older than 365 days." in pruned.stdout, pruned.stderr
    verified = _manage(app_env, "verify_audit_log")
    assert verified.returncode == 0 and verified.stdout.startswith("OK: 3 events verified"), verified.stderr


def test_the_app_role_cannot_write_a_review_record_of_its_choosing(granted):
    roles, _ = granted
    with roles.connect(roles.app_url) as app, pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(
            "INSERT INTO customers_historyreview (sequence, created_at, username, kind, detail, rows, request_id, "
            "prev_hash, hash) VALUES (1, '2001-01-01', 'ada', 'view', '{}', 0, '', %s, %s)",
            [chain.GENESIS, "0" * 64],
        )


def test_the_app_role_cannot_have_the_append_function_hash_text_of_its_choosing(granted):
    """0009's and 0011's function hashed text the caller passed beside the values; it is gone."""
    roles, _ = granted
    with roles.connect(roles.app_url) as app, pytest.raises(psycopg.errors.UndefinedFunction):
        app.execute(
            "SELECT * FROM customers_lookupevent_append(NULL::bigint, 'sam', 2143, 'found', NULL::bigint, 'web', "
            "NULL::inet, '', '', 0, false, NULL::text, NULL::text, NULL::text, '[', ',', ',', ',')"
        )


def test_the_app_roles_appends_get_the_databases_sequence_time_and_a_hash_of_what_is_stored(granted):
    roles, _ = granted
    with roles.connect(roles.app_url) as app:
        _, sequence, created_at, prev_hash, hash_ = app.execute(APPEND, [2146]).fetchone()
        now, head = app.execute("SELECT now(), (SELECT max(sequence) FROM customers_lookupevent)").fetchone()
        stored = dict(zip(COLUMNS, app.execute(
            f"SELECT {', '.join(COLUMNS)} FROM customers_lookupevent WHERE sequence = %s", [sequence]
        ).fetchone(), strict=True))  # fmt: skip
    assert sequence == head and abs((now - created_at).total_seconds()) < 60
    assert stored["hash"] == hash_ == chain.lookup_hash({**stored, "ip": str(stored["ip"])})
    assert stored["prev_hash"] == prev_hash


def test_check_deploy_refuses_an_app_role_that_can_still_insert_into_the_log(granted):
    roles, app_env = granted
    assert _manage(app_env, "check", "--deploy").returncode == 0
    with roles.connect(roles.owner_url) as owner:
        owner.execute(f'GRANT INSERT ON customers_lookupevent TO "{roles.app}"')
        try:
            checked = _manage(app_env, "check", "--deploy")
        finally:
            owner.execute(f'REVOKE INSERT ON customers_lookupevent FROM "{roles.app}"')
    assert checked.returncode != 0 and "has INSERT on customers_lookupevent" in checked.stderr


def test_check_deploy_refuses_an_app_role_that_can_create_objects_the_append_functions_would_run_as_the_owner(
    granted,
):
    """PostgreSQL 14 and older let PUBLIC create in schema public: a public.to_json(text)
    made by the app's role is a closer match than pg_catalog's and runs inside the append
    function, as the owner."""
    roles, app_env = granted
    assert _manage(app_env, "check", "--deploy").returncode == 0
    with roles.connect(roles.owner_url) as owner:
        owner.execute(f'GRANT CREATE ON SCHEMA public TO "{roles.app}"')
        try:
            with roles.connect(roles.app_url) as app:
                app.execute(
                    "CREATE FUNCTION public.to_json(a text) RETURNS json LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'running as %', current_user; END $$"
                )
                with pytest.raises(psycopg.errors.RaiseException, match=f"running as {roles.owner}"):
                    app.execute(APPEND, [2147])
                app.execute("DROP FUNCTION public.to_json(text)")
            checked = _manage(app_env, "check", "--deploy")
        finally:
            owner.execute(f'REVOKE CREATE ON SCHEMA public FROM "{roles.app}"')
    assert checked.returncode != 0 and "may create objects in schema public" in checked.stderr
    assert _manage(app_env, "check", "--deploy").returncode == 0


def test_an_unsigned_prune_record_written_with_the_owners_rights_fails_verification(granted):
    """Last: it leaves the log broken. Delete the first events, write a prune record that
    links to the rest with no key and no signature: the verifier used to note it and pass."""
    roles, app_env = granted
    with roles.connect(roles.owner_url) as owner:
        through, through_hash = owner.execute(
            "SELECT sequence, hash FROM customers_lookupevent ORDER BY sequence LIMIT 1 OFFSET 1"
        ).fetchone()
        owner.execute("ALTER TABLE customers_lookupevent DISABLE TRIGGER USER")
        owner.execute("DELETE FROM customers_lookupevent WHERE sequence <= %s", [through])
        owner.execute("ALTER TABLE customers_lookupevent ENABLE TRIGGER USER")
        owner.execute(
            "INSERT INTO customers_auditanchor (created_at, username, through_sequence, through_hash, events_pruned, "
            "older_than_days, key_id, signature) VALUES (now(), 'prune_audit_log', %s, %s, %s, 365, '', '')",
            [through, through_hash, through],
        )
    verified = _manage(app_env, "verify_audit_log")
    assert verified.returncode != 0
    assert f"the prune record through sequence {through} is not signed" in verified.stderr
    accepted = _manage(app_env, "verify_audit_log", "--accept-legacy-through", str(through))
    assert accepted.returncode == 0 and "accepted on your word" in accepted.stdout, accepted.stderr
