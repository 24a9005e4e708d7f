"""The audit log: one ``LookupEvent`` per customer lookup, append-only.

No customer's personal details are stored here: the project ID, Solar Proof's
customer ID and what happened are enough to answer "who looked at whom, when".
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import AuthMethod
from customers.outcomes import Outcome


class AuditLogIsAppendOnly(Exception):
    """Raised on any attempt to change or remove an audit row through the ORM."""


class Channel(models.TextChoices):
    WEB = "web", "Web"
    CLI = "cli", "Command line"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditLogIsAppendOnly(f"{self.model._meta.verbose_name_plural} cannot be updated.".capitalize())

    def delete(self) -> NoReturn:
        raise AuditLogIsAppendOnly(f"{self.model._meta.verbose_name_plural} cannot be deleted.".capitalize())


AppendOnlyManager = models.Manager.from_queryset(AppendOnlyQuerySet)


class LookupEvent(models.Model):
    # Gapless, assigned under the chain lock: the order of the hash chain.
    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField("time", default=timezone.now, editable=False)
    # PROTECT: a user with history is deactivated, not deleted, so the trail stays whole.
    # No index of its own: lookup_user_seq_idx starts with it (migration 0015).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="lookup_events",
        editable=False,
        db_index=False,
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
    # NULL, not "", for "not recorded": and a nullable column is added in place, where a
    # NOT NULL one makes SQLite rebuild the table and drop its append-only triggers.
    auth_method = models.CharField(  # noqa: DJ001
        "signed in with",
        max_length=8,
        choices=AuthMethod.choices,
        null=True,
        blank=True,
        editable=False,
        help_text="How the user had signed in. Empty for the command line and for lookups made before it was recorded.",
    )
    # NULL when the reason was not asked for (LOOKUP_REASON off), as for auth_method.
    reason = models.CharField(  # noqa: DJ001
        "reason",
        max_length=200,
        null=True,
        blank=True,
        editable=False,
        help_text="Why the staff member looked the customer up, in their words or a picked reason.",
    )
    # NULL for lookups made before it was recorded, as for auth_method and reason.
    role = models.CharField(  # noqa: DJ001
        "role at the time",
        max_length=64,
        null=True,
        blank=True,
        editable=False,
        help_text="The staff member's portal roles when they looked up (empty: none). Empty for older lookups.",
    )
    prev_hash = models.CharField(
        "previous hash", max_length=64, editable=False, help_text="The hash of the event before this one."
    )
    hash = models.CharField(
        max_length=64, editable=False, help_text="SHA-256 of this event's stored values and the previous hash."
    )

    objects = AppendOnlyManager()

    class Meta:
        verbose_name = "lookup event"
        ordering = ["-sequence"]
        indexes = [
            models.Index(fields=["created_at"], name="lookup_time_idx"),
            models.Index(fields=["user", "-sequence"], name="lookup_user_seq_idx"),
            models.Index(fields=["username", "-sequence"], name="lookup_username_seq_idx"),
            models.Index(fields=["project_id", "-sequence"], name="lookup_project_seq_idx"),
            models.Index(fields=["outcome", "-sequence"], name="lookup_outcome_seq_idx"),
            # The customer access report: every lookup that showed one customer.
            models.Index(fields=["customer_id", "sequence"], name="lookup_customer_seq_idx"),
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


class AuditAnchor(models.Model):
    """A prune of the audit log: where the remaining chain now starts, and why.

    The first remaining event links to ``through_hash``, so the verifier can accept a
    chain that no longer starts at sequence 1 without trusting anyone's word for it.
    """

    created_at = models.DateTimeField("time", default=timezone.now, editable=False)
    username = models.CharField(max_length=150, editable=False, help_text="Who ran the prune.")
    through_sequence = models.PositiveBigIntegerField(
        unique=True, editable=False, help_text="The last sequence removed."
    )
    through_hash = models.CharField(max_length=64, editable=False, help_text="The hash of the last event removed.")
    events_pruned = models.PositiveBigIntegerField(editable=False)
    older_than_days = models.PositiveIntegerField(editable=False)
    key_id = models.CharField(
        "key ID",
        max_length=32,
        blank=True,
        editable=False,
        help_text="The Ed25519 key that signed this prune; empty for the legacy HMAC scheme.",
    )
    signature = models.CharField(
        max_length=128,
        blank=True,
        editable=False,
        help_text="Ed25519 signature (base64) of the prune statement; legacy rows hold an HMAC-SHA256 in hex.",
    )

    objects = AppendOnlyManager()

    class Meta:
        verbose_name = "audit log prune"
        ordering = ["-through_sequence"]

    def __str__(self) -> str:
        return f"Pruned {self.events_pruned} events through sequence {self.through_sequence}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Prune records cannot be changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogIsAppendOnly("Prune records cannot be deleted.")


class AuditGate(models.Model):
    """Holds a row only inside the prune's own transaction; the database triggers let a
    DELETE through while it does. Never committed with a row in it."""

    class Meta:
        verbose_name = "audit prune gate"

    def __str__(self) -> str:
        return "open prune gate"


class HistoryReview(models.Model):
    """Somebody read the lookup log (or took customers' details away on a device):
    reading the log is itself on the record. Append-only and hash-chained like the
    lookup events, so a deleted review is detected."""

    class Kind(models.TextChoices):
        VIEW = "view", "Viewed history"
        EXPORT = "export", "Exported CSV"
        ADMIN_LIST = "admin_list", "Listed lookups in the admin"
        ADMIN_VIEW = "admin_view", "Opened a lookup in the admin"
        KEPT_ON_DEVICE = "kept_on_device", "Kept customers' details on a device"
        ACCESS_REPORT = "access_report", "Made a customer access report"

    # Gapless, assigned under the review chain's lock.
    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField("time", default=timezone.now, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="history_reviews", editable=False
    )
    username = models.CharField(max_length=150, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices, editable=False)
    detail = models.JSONField(
        default=dict,
        editable=False,
        help_text="What was read: the history filters, the admin's query, an event's sequence, or the projects.",
    )
    rows = models.PositiveBigIntegerField(
        null=True, editable=False, help_text="Rows exported; for a page view, rows shown."
    )
    ip = models.GenericIPAddressField("IP address", null=True, blank=True, editable=False)
    request_id = models.CharField("request ID", max_length=64, blank=True, editable=False)
    prev_hash = models.CharField("previous hash", max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = AppendOnlyManager()

    class Meta:
        verbose_name = "history review"
        ordering = ["-sequence"]
        indexes = [models.Index(fields=["-created_at"], name="review_time_idx")]

    def __str__(self) -> str:
        return f"{self.username}: {self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Review records cannot be changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogIsAppendOnly("Review records cannot be deleted.")
