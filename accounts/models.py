"""Which company account (at which identity provider) is which portal user."""

from __future__ import annotations

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils.module_loading import import_string


class AuthMethod(models.TextChoices):
    """How a session was signed in; recorded on every audit row it writes."""

    OIDC = "oidc", "Company account"
    LOCAL = "local", "Username and password"


class CompanyAccount(models.Model):
    """The provider's stable subject for a user. Sign-in matches on this, never on the
    email address or username, which the provider lets people change."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="company_account")
    issuer = models.CharField(max_length=255, help_text="The identity provider's issuer URL.")
    subject = models.CharField(max_length=255, help_text="The provider's permanent ID for this person (sub).")
    roles = models.CharField(
        max_length=255, blank=True, help_text="The portal roles the provider granted at the last sign-in."
    )
    first_signed_in = models.DateTimeField(auto_now_add=True)
    last_checked = models.DateTimeField(help_text="When the provider last confirmed this account.")

    class Meta:
        verbose_name = "company account"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="one_user_per_company_account")]

    def __str__(self) -> str:
        return f"{self.user} at {self.issuer}"


class Session(AbstractBaseSession):
    """Django's database session plus the signed-in user's ID as a column, so that one
    statement reads the session, its user and the user's permissions on every request
    (accounts/session_store.py). Deleting a user deletes their sessions."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    @classmethod
    def get_session_store_class(cls) -> type:
        # By name: the store imports this model, and models import nothing of their stores.
        return import_string("accounts.session_store.SessionStore")
