import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from customers.audit import checkpoints, signing


class Command(BaseCommand):
    help = (
        "Take a signed checkpoint of the audit chains' heads now: print it, append it to AUDIT_CHECKPOINT_FILE "
        "(when set) and write it to the audit log stream. The portal also takes them by itself; run this from "
        "cron for a checkpoint on a fixed clock."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            statement = checkpoints.take_checkpoint()
        except (signing.NoSigningKey, OSError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(statement, sort_keys=True))
