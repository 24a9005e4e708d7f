from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.audit import prune, signing
from customers.audit.verify import sequence_number


class Command(BaseCommand):
    help = (
        "Delete lookup events older than N days (default AUDIT_RETENTION_DAYS), keeping the chain verifiable. "
        "Verifies the whole log first (against AUDIT_CHECKPOINT_FILE too) and deletes nothing if it does not hold."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-days", type=int, default=None)
        parser.add_argument("--by", default="prune_audit_log", help="who is pruning, for the record")
        parser.add_argument(
            "--accept-legacy-through",
            type=sequence_number,
            metavar="SEQUENCE",
            help="accept, on your word, the unsigned or legacy (HMAC without AUDIT_LEGACY_HMAC_KEY) prune records "
            "through this one (its last removed sequence) when verifying first; without it they fail",
        )

    def handle(
        self, *args: Any, older_than_days: int | None, by: str, accept_legacy_through: int | None, **options: Any
    ) -> None:
        days = older_than_days if older_than_days is not None else settings.AUDIT_RETENTION_DAYS
        if days is None:
            raise CommandError("Say how much history to keep: --older-than-days N, or set AUDIT_RETENTION_DAYS.")
        if not 1 <= days <= prune.MAX_RETENTION_DAYS:
            raise CommandError(f"--older-than-days must be from 1 to {prune.MAX_RETENTION_DAYS}; nothing was pruned.")
        try:
            anchor = prune.prune(older_than_days=days, username=by, accept_legacy_through=accept_legacy_through)
        except (prune.PruneRefused, signing.NoSigningKey) as exc:
            raise CommandError(str(exc)) from None
        if anchor is None:
            self.stdout.write(f"Nothing older than {days} days.")
            return
        self.stdout.write(
            f"Pruned {anchor.events_pruned} events through sequence {anchor.through_sequence}; "
            "the remaining chain starts from that anchor."
        )
