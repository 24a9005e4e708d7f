"""A fresh benchmark database: migrated, static files collected, a signed-in Sales user,
and the plain version's audit table."""

from __future__ import annotations

import os
from pathlib import Path

from bench.common import DB_NAME, SERVER, env_base


def set_up(static_root: Path) -> str:
    """Drop and recreate the database; returns the session cookie of a Sales user."""
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    os.environ.update(env_base(DJANGO_STATIC_ROOT=str(static_root), SOLARPROOF_DEMO="true"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "solarproof_portal.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    _create_plain_table()
    return session_cookie("bench.sales", "Sales")


def _create_plain_table() -> None:
    """The plain version is never installed in the portal, so its one table is made here
    (the model names its app label, so it imports without the app)."""
    from django.db import connection

    from bench.plain.models import PlainLookup

    with connection.schema_editor() as editor:
        editor.create_model(PlainLookup)


def session_cookie(username: str, role: str) -> str:
    """A session signed in with the password backend, which both apps know."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username=username)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user, backend="accounts.backends.PasswordBackend")
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    _share_with_plain_version(key)
    return key


def _share_with_plain_version(session_key: str) -> None:
    """The plain version keeps Django's stock session table; the same row goes there too."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_session (session_key, session_data, expire_date) "
            "SELECT session_key, session_data, expire_date FROM accounts_session WHERE session_key = %s",
            [session_key],
        )
