import dataclasses
import json
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers import lookups
from customers.forms import REASON_MAX_LENGTH, parse_project_id
from customers.models import Channel


class Command(BaseCommand):
    help = "Look up the customer of a Solar Proof project as a user, print it as JSON. Audited (channel cli)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_id", help="the Solar Proof project ID")
        parser.add_argument("--as", dest="username", required=True, help="the portal user making the lookup")
        parser.add_argument("--refresh", action="store_true", help="skip the portal's short cache")
        parser.add_argument(
            "--reason", default="", help="why you look the customer up (stored on the audit row; LOOKUP_REASON)"
        )

    def handle(self, *args: Any, project_id: str, username: str, refresh: bool, reason: str, **options: Any) -> None:
        parsed = parse_project_id(project_id)
        if parsed is None:
            raise CommandError(f"Not a project ID: {project_id!r}. A project ID is a whole number such as 2143.")
        try:
            user = get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No portal user named {username!r}.") from None
        if not user.is_active:
            raise CommandError(f"The user {username!r} is deactivated.")
        reason = reason.strip()[:REASON_MAX_LENGTH]
        if settings.LOOKUP_REASON == "required" and not reason:
            raise CommandError("Say why you look this customer up: --reason TEXT (LOOKUP_REASON is required).")
        try:
            result = lookups.look_up_customer(
                user=user,
                project_id=parsed,
                channel=Channel.CLI,
                refresh=refresh,
                reason=(reason or None) if settings.LOOKUP_REASON != "off" else None,
            )
        except (lookups.NotPermitted, lookups.AuditUnavailable) as exc:
            raise CommandError(str(exc)) from None
        if not result.found:
            raise CommandError(f"{result.outcome}: {result.message}")
        payload = {"project_id": parsed, "cache_hit": result.cache_hit, "customer": dataclasses.asdict(result.customer)}
        self.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False))
