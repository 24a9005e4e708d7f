"""The company's identity provider, over OpenID Connect. All HTTP to it lives here.

Authlib does the protocol: discovery, the authorisation URL with state, nonce and a
PKCE (S256) challenge kept in the session, the code exchange, and the ID token's
signature against the provider's JWKS (fetched again when a key is unknown, so the
provider can rotate keys). This module adds what Authlib leaves to the application:
the discovery document must name the configured issuer, the ID token must be issued
for this portal, and every failure becomes one ``SignInFailed`` that is safe to show.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError

logger = logging.getLogger(__name__)

# Each sign-in attempt keeps where to go afterwards, and whether it was a silent
# re-check, under its state; a few at once cover several tabs.
PENDING_SESSION_KEY = "oidc_pending"
_MAX_PENDING = 5


class SignInFailed(Exception):
    """A sign-in through the provider that did not happen. The message is for staff."""

    def __init__(self, message: str, *, reason: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Verified:
    """What a verified ID token says, and what the sign-in attempt was for."""

    issuer: str
    claims: dict[str, Any]
    next_url: str
    silent: bool
    # The round trip began on the portal itself, so its way back may look up (cross_site.py).
    from_portal: bool = False


def enabled() -> bool:
    return bool(settings.OIDC_ISSUER)


def provider_name(*, starts_sentence: bool = False) -> str:
    """ "Microsoft" from "Sign in with Microsoft", for messages; else a generic name."""
    name = settings.OIDC_BUTTON_LABEL.removeprefix("Sign in with ").strip()
    if not name or name == settings.OIDC_BUTTON_LABEL or name.lower().startswith("your "):
        name = "the sign-in service"
    return name[:1].upper() + name[1:] if starts_sentence else name


@functools.lru_cache(maxsize=4)
def _provider(issuer: str, client_id: str, client_secret: str, timeout: float) -> DjangoOAuth2App:
    # One per configuration: the discovery document and keys are fetched once and kept.
    return OAuth().register(
        name="company",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256", "default_timeout": timeout},
    )


def _configured_provider() -> DjangoOAuth2App:
    return _provider(settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET, settings.OIDC_TIMEOUT)


def _metadata(provider: DjangoOAuth2App) -> dict[str, Any]:
    try:
        metadata = provider.load_server_metadata()
    except (requests.RequestException, ValueError):
        logger.warning("Sign-in: the identity provider's discovery document could not be read", exc_info=True)
        raise _unreachable() from None
    if str(metadata.get("issuer", "")).rstrip("/") != settings.OIDC_ISSUER:
        # OpenID Connect Discovery 4.3: a document naming another issuer is not to be used.
        provider.server_metadata.pop("_loaded_at", None)
        logger.warning("Sign-in: the discovery document names an issuer other than OIDC_ISSUER")
        raise SignInFailed(
            f"{provider_name(starts_sentence=True)} answered as a different identity provider "
            "than this portal is set up for. "
            "Nothing was signed in; tell IT (the OIDC_ISSUER setting).",
            reason="issuer",
            status=502,
        )
    return metadata


def _unreachable() -> SignInFailed:
    return SignInFailed(
        f"The portal could not get a usable answer from {provider_name()} to sign you in. Try again in a minute.",
        reason="unreachable",
        status=502,
    )


def callback_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("accounts:oidc_callback"))


def authorization_redirect(
    request: HttpRequest, *, next_url: str, silent: bool = False, from_portal: bool = False
) -> HttpResponseRedirect:
    """Send the browser to the provider. ``silent`` asks it not to show anything
    (prompt=none): the re-check of a signed-in session."""
    provider = _configured_provider()
    _metadata(provider)
    redirect_uri = callback_url(request)
    extra = {"prompt": "none"} if silent else {}
    try:
        authorization = provider.create_authorization_url(redirect_uri, **extra)
    except RuntimeError:  # the discovery document has no authorization endpoint
        logger.warning("Sign-in: the discovery document has no authorization endpoint")
        raise _unreachable() from None
    provider.save_authorize_data(request, redirect_uri=redirect_uri, **authorization)
    pending = request.session.get(PENDING_SESSION_KEY, {})
    pending[authorization["state"]] = {"next": next_url, "silent": silent, "from_portal": from_portal}
    request.session[PENDING_SESSION_KEY] = dict(list(pending.items())[-_MAX_PENDING:])
    return HttpResponseRedirect(authorization["url"])


def end_session_url(*, after: str) -> str | None:
    """Where to send the browser so that the provider signs it out too (RP-initiated
    logout), or None where the provider has no such endpoint (Google) or is unreachable.
    On a shared tablet this is what stops the next person's click on the button from
    signing them in as the last person."""
    provider = _configured_provider()
    try:
        metadata = _metadata(provider)
    except SignInFailed:
        return None
    if not metadata.get("end_session_endpoint"):
        return None
    return provider.create_logout_url(post_logout_redirect_uri=after, client_id=settings.OIDC_CLIENT_ID)["url"]


def verify_callback(request: HttpRequest) -> Verified:
    """Check the provider's answer and return the verified claims, or raise SignInFailed."""
    provider = _configured_provider()
    state = request.GET.get("state", "")
    pending = request.session.get(PENDING_SESSION_KEY, {})
    attempt = pending.pop(state, None)
    request.session[PENDING_SESSION_KEY] = pending
    if attempt is None:
        raise SignInFailed(
            "This sign-in had expired or was already used, so nothing was signed in. Start again.", reason="state"
        )
    error = request.GET.get("error", "")
    if error:
        provider.framework.clear_state_data(request.session, state)
        raise _refused(error, silent=attempt["silent"])
    metadata = _metadata(provider)
    try:
        token = provider.authorize_access_token(
            request,
            # Authlib checks the issuer against discovery; the audience must be exactly us.
            claims_options={
                "iss": {"essential": True, "value": metadata["issuer"]},
                "aud": {"essential": True, "value": settings.OIDC_CLIENT_ID},
                "sub": {"essential": True},
            },
        )
    except MismatchingStateError:
        raise SignInFailed(
            "This sign-in had expired or was already used, so nothing was signed in. Start again.", reason="state"
        ) from None
    except OAuthError as exc:
        logger.warning("Sign-in: the identity provider refused the code exchange (%s)", _safe_code(exc.error))
        raise SignInFailed(
            f"{provider_name(starts_sentence=True)} did not complete the sign-in. Start again.",
            reason="token",
            status=502,
        ) from None
    except (requests.RequestException, ValueError, KeyError, TypeError, RuntimeError):
        # Unreachable, or an answer (token, JWKS) that is not what the protocol says.
        logger.warning("Sign-in: the identity provider's token or key answer could not be used", exc_info=True)
        raise _unreachable() from None
    except JoseError as exc:
        raise _unverified(exc) from None
    if "userinfo" not in token:
        logger.warning("Sign-in: the token answer carried no ID token")
        raise SignInFailed(
            f"{provider_name(starts_sentence=True)} sent no ID token, so nothing was signed in. Tell IT.",
            reason="claims",
            status=502,
        )
    return Verified(
        issuer=metadata["issuer"],
        claims=dict(token["userinfo"]),
        next_url=attempt["next"],
        silent=attempt["silent"],
        from_portal=attempt.get("from_portal", False),
    )


def _safe_code(value: object) -> str:
    """An OAuth error code from the provider, only if it looks like one (it is untrusted)."""
    text = str(value or "")
    return text if re.fullmatch(r"[a-z_]{1,40}", text) else "unrecognised"


_REFUSALS = {
    "access_denied": "You, or your organisation's policy, declined the sign-in.",
    "login_required": "Your sign-in has run out.",
    "interaction_required": "Your sign-in has run out.",
    "consent_required": "This portal needs your consent again.",
    "account_selection_required": "Choose the account to use.",
}


def _refused(error: str, *, silent: bool) -> SignInFailed:
    code = _safe_code(error)
    logger.info("Sign-in: the identity provider answered %s%s", code, " to a silent re-check" if silent else "")
    detail = _REFUSALS.get(code, f"{provider_name(starts_sentence=True)} refused the sign-in ({code}).")
    return SignInFailed(f"{detail} Sign in again to go on.", reason=f"refused:{code}", status=403 if silent else 400)


_CLAIM_PROBLEMS = {
    "iss": ("issuer", "came from an identity provider this portal does not trust"),
    "aud": ("audience", "was issued for a different application"),
    "azp": ("audience", "was issued for a different application"),
    "nonce": ("nonce", "does not belong to this sign-in attempt"),
}


def _unverified(exc: JoseError) -> SignInFailed:
    if isinstance(exc, ExpiredTokenError):
        reason, problem = "expired", "had already expired (if this keeps happening, check this server's clock)"
    elif isinstance(exc, ClaimError):
        reason, problem = _CLAIM_PROBLEMS.get(exc.claim, ("claims", f"has a wrong or missing {exc.claim!r} claim"))
    else:
        reason, problem = "signature", f"is not signed with {provider_name()}'s key"
    logger.warning("Sign-in refused: the ID token failed verification (%s, %s)", reason, exc.error)
    return SignInFailed(
        f"The sign-in answer {problem}, so nothing was signed in. Start again; if it happens again, tell IT.",
        reason=reason,
    )
