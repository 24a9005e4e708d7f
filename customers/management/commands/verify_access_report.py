from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.history import access_statement


class Command(BaseCommand):
    help = (
        "Check a customer access report (report.json) with the portal's public keys alone (AUDIT_VERIFY_KEYS): "
        "the statement's signature, every row's signature and chain hash, their order, and the signed checkpoint "
        "that covers them. Exit 0 only when all of it holds; otherwise name each line that does not. Needs no "
        "database and none of the portal's other settings."
    )
    # An auditor's machine has no database to check.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="the report.json the portal made")

    def handle(self, *args: Any, file: Path, **options: Any) -> None:
        try:
            statement = access_statement.parse(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{file} is not a customer access report: it is not UTF-8 text") from None
        except access_statement.NotAStatement as exc:
            raise CommandError(f"{file} is not a customer access report: {exc}") from None
        result = access_statement.check(statement)
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(f"FAILED {problem}")
            raise CommandError(
                f"{file} does not verify: {len(result.problems)} problem{'s' if len(result.problems) != 1 else ''}"
            )
        self.stdout.write(
            f"OK: customer {result.customer_id}, {result.rows} row{'s' if result.rows != 1 else ''} verified, "
            f"signed by key {statement.get('key_id')}; checkpoint at sequence {result.checkpoint_sequence} covers them"
        )
