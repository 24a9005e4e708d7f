"""Portal users from company accounts: created or updated at every sign-in, matched on
the provider's subject, with their roles taken from the provider each time."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import CompanyAccount

logger = logging.getLogger(__name__)

PORTAL_ROLES = ("Sales", "Installers", "Admins")
_USERNAME_MAX = 150


def roles_from_claims(claims: dict[str, Any]) -> set[str]:
    """The portal roles OIDC_ROLE_MAP grants for the role claim's values."""
    claim = settings.OIDC_ROLE_CLAIM
    value = claims.get(claim)
    values = (
        [value]
        if isinstance(value, str)
        else [v for v in value if isinstance(v, str)]
        if isinstance(value, list)
        else []
    )
    if not values and claim in (claims.get("_claim_names") or {}):
        # Entra ID leaves groups out of the token when someone is in too many of them.
        logger.warning("Sign-in: the provider left the %s claim out of the token (too many groups)", claim)
    return {settings.OIDC_ROLE_MAP[v] for v in values if v in settings.OIDC_ROLE_MAP}


def company_account_sign_in(*, issuer: str, claims: dict[str, Any]) -> Any:
    """The portal user for a verified ID token, brought up to date with it."""
    try:
        return _sign_in(issuer=issuer, claims=claims)
    except IntegrityError:
        # The same person's first sign-in in two tabs at once: the other one made the user.
        return _sign_in(issuer=issuer, claims=claims)


@transaction.atomic
def _sign_in(*, issuer: str, claims: dict[str, Any]) -> Any:
    subject = str(claims["sub"])
    roles = roles_from_claims(claims)
    account = (
        CompanyAccount.objects.select_for_update().select_related("user").filter(issuer=issuer, subject=subject).first()
    )
    user_model = get_user_model()
    if account is None:
        user = user_model(username=_free_username(claims, issuer, subject, current=None))
        user.set_unusable_password()
        account = CompanyAccount(issuer=issuer, subject=subject)
    else:
        user = account.user
        user.username = _free_username(claims, issuer, subject, current=user)
    user.email = _email(claims)
    user.first_name = str(claims.get("given_name") or "")[:150]
    user.last_name = str(claims.get("family_name") or "")[:150]
    # Without OIDC_ROLE_MAP the provider only says who someone is (Google Workspace has
    # no group claim); their roles are then given in the portal's admin, and kept.
    takes_roles = bool(settings.OIDC_ROLE_MAP)
    if takes_roles:
        user.is_staff = "Admins" in roles
    user.save()
    if takes_roles:
        user.groups.remove(*Group.objects.filter(name__in=PORTAL_ROLES).exclude(name__in=roles))
        user.groups.add(*Group.objects.filter(name__in=roles))
    account.user = user
    account.roles = ", ".join(sorted(roles)) if takes_roles else "(given in the portal)"
    account.last_checked = timezone.now()
    account.save()
    return user


def _free_username(claims: dict[str, Any], issuer: str, subject: str, *, current: Any) -> str:
    """The username the claims ask for, unless another user has it: a company account
    never takes over someone else's portal account by having the same name."""
    wanted = str(claims.get("preferred_username") or claims.get("email") or "")
    wanted = re.sub(r"[^\w.@+-]", "", wanted)[:_USERNAME_MAX] or "user"
    taken = get_user_model().objects.filter(username=wanted).exclude(pk=getattr(current, "pk", None)).exists()
    if not taken:
        return wanted
    if current is not None:
        return current.username
    suffix = hashlib.sha256(f"{issuer} {subject}".encode()).hexdigest()[:8]
    return f"{wanted[: _USERNAME_MAX - 9]}+{suffix}"


def _email(claims: dict[str, Any]) -> str:
    email = str(claims.get("email") or "")
    if claims.get("email_verified") is False:
        return ""
    try:
        validate_email(email)
    except ValidationError:
        return ""
    return email[:254]


def is_account_of(user: Any, *, issuer: str, subject: str) -> bool:
    """Whether this company account (the provider's issuer and subject) is the user's."""
    return CompanyAccount.objects.filter(user=user, issuer=issuer, subject=subject).exists()
