from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.audit import verify
from customers.audit.checkpoints import read_statements


class Command(BaseCommand):
    help = (
        "Walk the audit log's hash chains (lookup events and review records) in sequence order, "
        "checking prune records' and checkpoints' Ed25519 signatures; exit non-zero at the first thing that "
        "does not hold. Needs only the public keys (AUDIT_VERIFY_KEYS)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoints",
            "--checkpoint",
            dest="checkpoints",
            type=Path,
            help="a checkpoint file (JSON lines, as AUDIT_CHECKPOINT_FILE, or one statement from audit_checkpoint): "
            "check the log against every statement in it, which catches rows cut off the end and an emptied "
            "table. Default: AUDIT_CHECKPOINT_FILE, when set.",
        )
        parser.add_argument(
            "--accept-legacy-through",
            type=verify.sequence_number,
            metavar="SEQUENCE",
            help="accept, on your word, the unsigned or legacy (HMAC without AUDIT_LEGACY_HMAC_KEY) prune records "
            "through this one (its last removed sequence); without it they fail verification. The answer says so.",
        )

    def handle(
        self, *args: Any, checkpoints: Path | None, accept_legacy_through: int | None = None, **options: Any
    ) -> None:
        path = checkpoints or (Path(settings.AUDIT_CHECKPOINT_FILE) if settings.AUDIT_CHECKPOINT_FILE else None)
        statements = []
        if checkpoints is None and path is not None and not path.exists():
            self.stderr.write(f"note: AUDIT_CHECKPOINT_FILE {path} does not exist yet: no checkpoints to check against")
            path = None
        if path is not None:
            try:
                statements = read_statements(path)
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read the checkpoint file {path}: {exc}") from None
        try:
            verify.check_accepted_legacy(accept_legacy_through)
        except verify.UnknownLegacyPrune as exc:
            raise CommandError(str(exc)) from None
        result = verify.verify_chain(statements=statements, accept_legacy_through=accept_legacy_through)
        for note in result.notes:
            self.stderr.write(f"note: {note}")
        if not result.ok:
            raise CommandError(str(result))
        suffix = ""
        if path is not None:
            latest = max((s for s in statements if s.get("type", "checkpoint") == "checkpoint"),
                         key=lambda s: s.get("sequence", 0), default=None)  # fmt: skip
            held = "checkpoint holds" if result.checkpoints == 1 else "checkpoints hold"
            latest_at = (
                f", latest at sequence {latest['sequence']}" if latest is not None and result.checkpoints else ""
            )
            suffix = f"; {result.checkpoints} {held} ({path}{latest_at})"
        if accept_legacy_through is not None:
            suffix += f"; unsigned prune records through sequence {accept_legacy_through} accepted on your word"
        self.stdout.write(f"{result}{suffix}")
