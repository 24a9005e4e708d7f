import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from customers import audit


class Command(BaseCommand):
    help = (
        "Print an HMAC-signed statement of the audit chain's head (sequence, hash, time). "
        "Store it outside the database; verify_audit_log --checkpoint FILE checks the log against it."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            statement = audit.checkpoint()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(statement, sort_keys=True))
