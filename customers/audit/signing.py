"""Ed25519 signatures over the audit log's statements (checkpoints and prune records).

The portal holds the private key (``AUDIT_SIGNING_KEY``); an auditor needs only the
public keys (``AUDIT_VERIFY_KEYS``), which can check a statement but not make one. Keys
travel as standard base64 of their 32 raw bytes. Each statement names the key that
signed it (``key_id``: the first 16 hex digits of SHA-256 of the raw public key), so
keys can be rotated: list the old public key beside the new one and old statements
still verify.

Statements written before Ed25519 carry no ``key_id`` and an HMAC-SHA256 in hex: they
are "legacy", checked only when the old secret is given as ``AUDIT_LEGACY_HMAC_KEY``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import hmac
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings


class Check(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"  # altered, or signed by a key the verifier does not list
    LEGACY_UNCHECKED = "legacy, unchecked"


def decode_key(text: str) -> bytes:
    """32 raw key bytes from standard base64; ValueError otherwise."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != 32:
        raise ValueError(f"{len(raw)} bytes, not 32")
    return raw


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def _private_key(seed: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(decode_key(seed))


class NoSigningKey(Exception):
    """This process holds only public keys (an auditor's machine): it can check, not sign."""


def private_key() -> Ed25519PrivateKey:
    if not settings.AUDIT_SIGNING_KEY:
        raise NoSigningKey("AUDIT_SIGNING_KEY is not set here: statements can be checked, not signed.")
    return _private_key(settings.AUDIT_SIGNING_KEY)


@functools.lru_cache(maxsize=4)
def _public_keys(listed: tuple[str, ...], seed: str) -> dict[str, Ed25519PublicKey]:
    if listed:
        keys = [Ed25519PublicKey.from_public_bytes(decode_key(text)) for text in listed]
    else:
        keys = [_private_key(seed).public_key()] if seed else []
    return {key_id(key): key for key in keys}


def verify_keys() -> dict[str, Ed25519PublicKey]:
    """The public keys statements may be signed with, by key ID: AUDIT_VERIFY_KEYS, or
    the public half of AUDIT_SIGNING_KEY when that is unset."""
    return _public_keys(tuple(settings.AUDIT_VERIFY_KEYS), settings.AUDIT_SIGNING_KEY)


def new_key_pair() -> tuple[str, str]:
    """(private seed, public key), each as standard base64 of 32 raw bytes."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return base64.b64encode(seed).decode(), base64.b64encode(_raw_public(key.public_key())).decode()


def public_key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw_public(key)).decode()


def _message(statement: dict[str, Any]) -> bytes:
    unsigned = {name: value for name, value in statement.items() if name != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement with ``key_id`` and ``signature`` added (the key ID is signed too)."""
    key = private_key()
    signed = {**statement, "key_id": key_id(key.public_key())}
    signed["signature"] = base64.b64encode(key.sign(_message(signed))).decode()
    return signed


def is_legacy(statement: dict[str, Any]) -> bool:
    return not statement.get("key_id")


def check(statement: dict[str, Any], *, legacy_fields: tuple[str, ...] = ()) -> Check:
    """Whether the statement's signature holds. A legacy statement is checked over
    ``legacy_fields`` (what the HMAC scheme signed) when AUDIT_LEGACY_HMAC_KEY is set."""
    if is_legacy(statement):
        secret = settings.AUDIT_LEGACY_HMAC_KEY
        if not secret:
            return Check.LEGACY_UNCHECKED
        payload = {name: statement.get(name) for name in legacy_fields}
        message = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        return Check.VALID if hmac.compare_digest(str(statement.get("signature", "")), expected) else Check.INVALID
    key = verify_keys().get(str(statement.get("key_id")))
    if key is None:
        return Check.INVALID
    try:
        key.verify(base64.b64decode(str(statement.get("signature", "")), validate=True), _message(statement))
    except (InvalidSignature, binascii.Error, ValueError):
        return Check.INVALID
    return Check.VALID
