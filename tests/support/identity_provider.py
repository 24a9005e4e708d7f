"""A small OpenID Connect provider of the tests' own, on loopback.

It does what the portal needs of Microsoft Entra ID or Google, over real HTTP:
discovery, an authorisation endpoint that approves whichever test person is "signed
in" at the provider (or answers login_required to a silent re-check when nobody is, or
the account is disabled), a token endpoint that checks the client secret, the code's
redirect URI and the PKCE verifier, and a JWKS with an RSA test key. ``tamper`` makes
the next ID tokens wrong in one chosen way, as an attacker or a broken provider would.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "solarproof-portal-tests"
CLIENT_SECRET = "test-oidc-client-secret-5b1e"
TAMPERINGS = ("signature", "unsigned", "expired", "audience", "audience_with_our_azp", "nonce", "issuer", "no_id_token")


@dataclass
class Person:
    sub: str
    claims: dict[str, Any]
    disabled: bool = False


@dataclass
class ProviderState:
    people: dict[str, Person] = field(default_factory=dict)
    signed_in: str | None = None
    tamper: str | None = None
    discovery_issuer: str | None = None
    broken: str | None = None  # "discovery", "jwks" or "token": an answer that is not the protocol's
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    end_session_requests: list[dict[str, str]] = field(default_factory=list)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)


class IdentityProvider:
    def __init__(self, port: int = 0, *, chooser: bool = False) -> None:
        # chooser: with nobody signed in, /authorize offers a page to pick a person (by hand).
        self.chooser = chooser
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig", "alg": "RS256"})
        # Same kid, different key: a token "signed by the provider" that was not.
        self.forger_key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig", "alg": "RS256"})
        self.state = ProviderState()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self.server.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.state = ProviderState()

    # --- what the tests say about the people at the provider -----------------------

    def add_person(self, sub: str, **claims: Any) -> Person:
        person = Person(sub, {"name": sub, **claims})
        self.state.people[sub] = person
        return person

    def sign_in_as(self, sub: str | None) -> None:
        """The person whose browser session the provider has, approved at /authorize."""
        self.state.signed_in = sub

    def set_groups(self, sub: str, groups: list[str]) -> None:
        self.state.people[sub].claims["groups"] = groups

    def disable(self, sub: str) -> None:
        self.state.people[sub].disabled = True

    # --- the protocol -------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        if self.state.broken == "discovery":
            return {"issuer": self.issuer}
        return {
            "issuer": self.state.discovery_issuer or self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile", "email"],
        }

    def authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.state.authorize_requests.append(params)
        if params.get("client_id") != CLIENT_ID or not params.get("redirect_uri"):
            return 400, {}, b"unknown client or no redirect_uri"
        back = params["redirect_uri"]
        state = params.get("state", "")
        missing = [name for name in ("state", "nonce", "code_challenge") if not params.get(name)]
        if params.get("response_type") != "code" or params.get("code_challenge_method") != "S256" or missing:
            return _redirect(back, error="invalid_request", state=state)
        person = self.state.people.get(params.get("as") or self.state.signed_in or "")
        if person is None and self.chooser and params.get("prompt") != "none":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, self._chooser_page(params)
        if person is None:
            return _redirect(back, error="login_required", state=state)
        self.state.signed_in = person.sub
        if person.disabled:
            return _redirect(
                back, error="login_required" if params.get("prompt") == "none" else "access_denied", state=state
            )
        code = secrets.token_urlsafe(24)
        self.state.codes[code] = {
            "sub": person.sub,
            "redirect_uri": back,
            "nonce": params["nonce"],
            "code_challenge": params["code_challenge"],
        }
        return _redirect(back, code=code, state=state)

    def _chooser_page(self, params: dict[str, str]) -> bytes:
        links = "".join(
            f'<li><a href="/authorize?{html.escape(urlencode({**params, "as": sub}))}">{html.escape(sub)}</a> '
            f"{html.escape(str(person.claims.get('groups')))}</li>"
            for sub, person in self.state.people.items()
        )
        return f"<!doctype html><title>Test provider</title><h1>Sign in as</h1><ul>{links}</ul>".encode()

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        self.state.token_requests.append(form)
        if self.state.broken == "token":
            return 200, {"not": "a token answer"}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(authorization[6:]).decode().partition(":")
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        grant = self.state.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if form.get("redirect_uri") != grant["redirect_uri"] or challenge != grant["code_challenge"]:
            return 400, {"error": "invalid_grant"}
        answer: dict[str, Any] = {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 3600}
        if self.state.tamper != "no_id_token":
            answer["id_token"] = self.id_token(self.state.people[grant["sub"]], nonce=grant["nonce"])
        return 200, answer

    def id_token(self, person: Person, *, nonce: str) -> str:
        now = int(time.time())
        claims = {
            **person.claims,
            "iss": self.issuer,
            "sub": person.sub,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
        }
        tamper = self.state.tamper
        if tamper == "expired":
            claims.update(iat=now - 900, exp=now - 600)
        elif tamper == "audience":
            claims["aud"] = "some-other-application"
        elif tamper == "audience_with_our_azp":  # Authlib's own checks let this one through
            claims.update(aud=["some-other-application"], azp=CLIENT_ID)
        elif tamper == "nonce":
            claims["nonce"] = "not-the-nonce-that-was-sent"
        elif tamper == "issuer":
            claims["iss"] = "https://login.example.invalid/other-tenant"
        header = {"alg": "RS256", "kid": self.key.kid}
        if tamper == "unsigned":
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            return f"{_b64_json({'alg': 'none', 'typ': 'JWT'})}.{body}."
        return jwt.encode(header, claims, self.forger_key if tamper == "signature" else self.key)

    def end_session(self, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.state.end_session_requests.append(params)
        self.state.signed_in = None
        if params.get("client_id") == CLIENT_ID and params.get("post_logout_redirect_uri"):
            return _redirect(
                params["post_logout_redirect_uri"], **({"state": params["state"]} if "state" in params else {})
            )
        return 200, {}, b"signed out"

    def jwks(self) -> dict[str, Any]:
        if self.state.broken == "jwks":
            return {"keys": [{"kty": "RSA", "kid": "test-key-1"}]}
        return {"keys": [self.key.as_dict(private=False)]}


def _b64_json(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _redirect(back: str, **params: str) -> tuple[int, dict[str, str], bytes]:
    separator = "&" if urlparse(back).query else "?"
    return 302, {"Location": f"{back}{separator}{urlencode(params)}" if params else back}, b""


def _handler_for(provider: IdentityProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:
            url = urlparse(self.path)
            params = {name: values[0] for name, values in parse_qs(url.query).items()}
            with provider.lock:
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, provider.discovery())
                elif url.path == "/jwks":
                    self._json(200, provider.jwks())
                elif url.path == "/authorize":
                    self._send(*provider.authorize(params))
                elif url.path == "/logout":
                    self._send(*provider.end_session(params))
                else:
                    self._send(404, {}, b"not found")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = {name: values[0] for name, values in parse_qs(body).items()}
            with provider.lock:
                if urlparse(self.path).path == "/token":
                    self._json(*provider.token(form, self.headers.get("Authorization", "")))
                else:
                    self._send(404, {}, b"not found")

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(
                status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, json.dumps(payload).encode()
            )

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


if __name__ == "__main__":
    # Company sign-in by hand: python -m tests.support.identity_provider [port], then
    # start the portal with the variables this prints (docs/company-sign-in.md, "Trying it locally").
    import sys

    provider = IdentityProvider(int(sys.argv[1]) if len(sys.argv) > 1 else 8090, chooser=True)
    for sub, group in (
        ("sofia.sales", "portal-sales"),
        ("ian.installer", "portal-installers"),
        ("ada.admin", "portal-admins"),
        ("nick.nogroup", "all-staff"),
    ):
        provider.add_person(sub, preferred_username=sub, email=f"{sub}@example.com.au", groups=[group])
    print(
        f"Test OpenID provider at {provider.issuer}. Start the portal with:\n"
        f"  OIDC_ISSUER={provider.issuer} OIDC_CLIENT_ID={CLIENT_ID} OIDC_CLIENT_SECRET={CLIENT_SECRET} \\\n"
        "  OIDC_ROLE_MAP=portal-sales=Sales,portal-installers=Installers,portal-admins=Admins make run",
        flush=True,
    )
    provider.thread.join()
