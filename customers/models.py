"""The audit log: one ``LookupEvent`` per customer lookup, append-only.

No customer's personal details are stored here: the project ID, Solar Proof's
customer ID and what happened are enough to answer "who looked at whom, when".
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditLogIsAppendOnly(Exception):
    """Raised on any attempt to change or remove an audit row through the ORM."""


class Outcome(models.TextChoices):
    FOUND = "found", "Found"
    PROJECT_NOT_FOUND = "project_not_found", "Project not found"
    NO_CUSTOMER = "no_customer", "No customer assigned"
    NOT_AUTHORISED = "not_authorised", "Not authorised"
    API_KEY_INVALID = "api_key_invalid", "API key invalid"
    INVALID_PARAMETERS = "invalid_parameters", "Invalid parameters"
    UPSTREAM_ERROR = "upstream_error", "Upstream error"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable", "Upstream unavailable"
    RATE_LIMITED = "rate_limited", "Rate limited"


class Channel(models.TextChoices):
    WEB = "web", "Web"
    CLI = "cli", "Command line"


class LookupEventQuerySet(models.QuerySet["LookupEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditLogIsAppendOnly("Lookup events cannot be updated.")

    def delete(self) -> NoReturn:
        raise AuditLogIsAppendOnly("Lookup events cannot be deleted.")


class LookupEventManager(models.Manager.from_queryset(LookupEventQuerySet)):  # type: ignore[misc]
    def record(
        self,
        *,
        user: Any,
        project_id: int,
        outcome: Outcome,
        channel: Channel,
        customer_id: int | None = None,
        ip: str | None = None,
        user_agent: str = "",
        request_id: str = "",
        duration_ms: int = 0,
        cache_hit: bool = False,
    ) -> LookupEvent:
        """The one way to write an audit row."""
        return self.create(
            user=user,
            username=user.get_username(),
            project_id=project_id,
            outcome=outcome,
            channel=channel,
            customer_id=customer_id,
            ip=ip,
            user_agent=user_agent[: LookupEvent._meta.get_field("user_agent").max_length],
            request_id=request_id[:64],
            duration_ms=max(duration_ms, 0),
            cache_hit=cache_hit,
        )


class LookupEvent(models.Model):
    created_at = models.DateTimeField("time", default=timezone.now, editable=False)
    # PROTECT: a user with history is deactivated, not deleted, so the trail stays whole.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="lookup_events", editable=False
    )
    username = models.CharField(max_length=150, editable=False, help_text="The username at the time of the lookup.")
    project_id = models.PositiveBigIntegerField("project ID", editable=False)
    outcome = models.CharField(max_length=32, choices=Outcome.choices, editable=False)
    customer_id = models.PositiveBigIntegerField(
        "customer ID", null=True, blank=True, editable=False, help_text="Solar Proof's customer ID, when found."
    )
    channel = models.CharField(max_length=8, choices=Channel.choices, editable=False)
    ip = models.GenericIPAddressField("IP address", null=True, blank=True, editable=False)
    user_agent = models.CharField(max_length=300, blank=True, editable=False)
    request_id = models.CharField("request ID", max_length=64, blank=True, editable=False)
    duration_ms = models.PositiveIntegerField("duration (ms)", default=0, editable=False)
    cache_hit = models.BooleanField(default=False, editable=False)

    objects = LookupEventManager()

    class Meta:
        verbose_name = "lookup event"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="lookup_time_idx"),
            models.Index(fields=["user", "-created_at"], name="lookup_user_time_idx"),
            models.Index(fields=["username", "-created_at"], name="lookup_username_time_idx"),
            models.Index(fields=["project_id", "-created_at"], name="lookup_project_time_idx"),
        ]
        permissions = [("look_up_customer", "Can look up a customer by project ID")]

    def __str__(self) -> str:
        return f"{self.username} looked up project {self.project_id}: {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Lookup events cannot be changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogIsAppendOnly("Lookup events cannot be deleted.")
