"""``manage.py check --deploy``: the portal must not run as a role that can undo its audit log."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.db import DatabaseError, connection

from customers.audit.database_roles import role_problems


@register(Tags.security, deploy=True)
def check_database_role(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        problems = role_problems(connection)
    except DatabaseError as exc:
        return [
            Error(
                f"Could not check the database role's privileges ({type(exc).__name__}).",
                hint="The start step runs this check after migrate: the database must answer.",
                id="customers.E002",
            )
        ]
    return [
        Error(
            f"The portal would connect as a role that could rewrite or switch off the audit log: {problem}.",
            hint=(
                "Connect as the app role (DATABASE_URL) and keep the owner for migrate, grants and prune "
                "(DATABASE_OWNER_URL); docs/deployment.md shows how to create both."
            ),
            id="customers.E001",
        )
        for problem in problems
    ]
