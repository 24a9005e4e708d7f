import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers import audit


class Command(BaseCommand):
    help = "Walk the audit log's hash chain in sequence order; exit non-zero at the first event that does not hold."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint",
            type=Path,
            help="a file written by audit_checkpoint: also prove the chain still contains that head",
        )

    def handle(self, *args: Any, checkpoint: Path | None, **options: Any) -> None:
        statement = None
        if checkpoint is not None:
            try:
                statement = json.loads(checkpoint.read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read the checkpoint {checkpoint}: {exc}") from None
            if not isinstance(statement, dict):
                raise CommandError(f"{checkpoint} is not a checkpoint written by audit_checkpoint.")
        result = audit.verify_chain(checkpoint=statement)
        if not result.ok:
            raise CommandError(str(result))
        suffix = f"; checkpoint at sequence {statement['sequence']} matches" if statement else ""
        self.stdout.write(f"{result}{suffix}")
