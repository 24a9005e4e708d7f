from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from customers.audit.database_roles import grant_app_privileges


class Command(BaseCommand):
    help = (
        "As the owner (DATABASE_OWNER_URL), give the app's role (DATABASE_URL) what the portal needs: "
        "ordinary tables read and write, audit tables append only. Run after every migrate."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if "owner" not in connections.settings:
            raise CommandError("Set DATABASE_OWNER_URL: the owner grants, the app's role (DATABASE_URL) receives.")
        owner, app = connections["owner"], connections["default"]
        if owner.vendor != "postgresql" or app.vendor != "postgresql":
            raise CommandError("Database roles need PostgreSQL.")
        app_role = app.settings_dict["USER"]
        if not app_role or app_role == owner.settings_dict["USER"]:
            raise CommandError("DATABASE_URL must name the app's own role, not the owner.")
        statements = grant_app_privileges(owner=owner, app_role=app_role)
        self.stdout.write(f"Granted {app_role} the portal's privileges ({len(statements)} statements).")
