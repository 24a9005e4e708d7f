"""A database of its own with the compose init script's two roles (owner and app), for
tests that attack the audit log as each role would. Dropped, with the roles, afterwards."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from django.conf import settings

from tests.support.processes import ROOT


@dataclass
class Roles:
    database: str
    owner: str
    app: str
    superuser_url: str
    owner_url: str
    app_url: str

    def connect(self, url: str) -> psycopg.Connection:
        return psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True)


def server() -> dict[str, str]:
    database = settings.DATABASES["default"]
    return {
        "host": database["HOST"] or "127.0.0.1",
        "port": str(database["PORT"] or 5432),
        "user": database["USER"],
        "password": database["PASSWORD"] or "",
    }


def _url(user: str, password: str, database: str) -> str:
    where = server()
    return f"postgres://{user}:{password}@{where['host']}:{where['port']}/{database}"


@contextmanager
def owner_and_app_roles() -> Iterator[Roles]:
    where, suffix = server(), uuid.uuid4().hex[:10]
    names = Roles(f"portal_roles_{suffix}", f"portal_owner_{suffix}", f"portal_app_{suffix}", "", "", "")
    names.superuser_url = _url(where["user"], where["password"], names.database)
    names.owner_url = _url(names.owner, "owner-pw-" + suffix, names.database)
    names.app_url = _url(names.app, "app-pw-" + suffix, names.database)
    admin = psycopg.connect(
        host=where["host"], port=where["port"], user=where["user"], password=where["password"], dbname="postgres"
    )
    admin.autocommit = True
    try:
        admin.execute(f'CREATE DATABASE "{names.database}"')
        subprocess.run(  # noqa: S603 - the compose init script, as the postgres image runs it
            ["sh", str(ROOT / "deploy/postgres-init/10-portal-roles.sh")],  # noqa: S607
            env={
                "PATH": os.environ["PATH"],
                "PGHOST": where["host"],
                "PGPORT": where["port"],
                "PGPASSWORD": where["password"],
                "POSTGRES_USER": where["user"],
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
