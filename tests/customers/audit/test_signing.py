"""Signatures over the audit log's statements, as an auditor checks them: known answers for
the Ed25519 scheme and the legacy HMAC one (Ed25519 is deterministic, so a fixed key and
statement give one signature, written out here), which keys are accepted, and what a
malformed key or signature gets. Checkpoint files and prune records built on these:
tests/customers/audit/test_checkpoints.py."""

import base64
import hashlib

import pytest

from customers.audit import signing

# A fixed seed (bytes 0..31) and its public half, as AUDIT_SIGNING_KEY and AUDIT_VERIFY_KEYS hold them.
SEED = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
PUBLIC = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
KEY_ID = "56475aa75463474c"  # the first 16 hex digits of SHA-256 of the raw public key

# A prune statement with non-ASCII in it, and exactly the bytes its signature covers:
# every field but the signature (the key ID included), keys sorted, no spaces, UTF-8.
STATEMENT = {
    "type": "prune",
    "through_sequence": 6,
    "through_hash": "ab" * 32,
    "events_pruned": 6,
    "older_than_days": 365,
    "username": "zoë.ó'brien",
    "time": "2026-03-01T02:03:04.123456+00:00",
}
MESSAGE = (
    '{"events_pruned":6,"key_id":"56475aa75463474c","older_than_days":365,"through_hash":"'
    + "ab" * 32
    + '","through_sequence":6,"time":"2026-03-01T02:03:04.123456+00:00","type":"prune","username":"zoë.ó\'brien"}'
).encode()
SIGNATURE = "67dZ17g7xMaRvZkVnb3vx7uIXAz49dVtZXv3Rd+wEENe+Cara2g9HQ3WxQvovWFGPRfIFYhWy+tIlSxw3WTfDA=="

# A checkpoint from before Ed25519: HMAC-SHA256 in hex over the legacy fields, keys
# sorted, no spaces, non-ASCII escaped (json.dumps' default), no key ID.
LEGACY_SECRET = "old-secret"
LEGACY_CHECKPOINT = {
    "sequence": 5,
    "hash": "cd" * 32,
    "time": "2026-01-01T00:00:00+00:00",
    "signature": "26f75de2f0e262c2f85d8e64301ff7e6befa289fa70bec43c7c1082b7b1c7f51",
}
LEGACY_FIELDS = ("sequence", "hash", "time")


@pytest.fixture
def fixed_key(settings):
    settings.AUDIT_SIGNING_KEY = SEED
    settings.AUDIT_VERIFY_KEYS = []
    settings.AUDIT_LEGACY_HMAC_KEY = ""


def test_a_fixed_key_signs_a_statement_with_the_known_key_id_and_signature(fixed_key):
    signed = signing.sign(dict(STATEMENT))
    assert signed == {**STATEMENT, "key_id": KEY_ID, "signature": SIGNATURE}
    assert signing.key_id(signing.private_key().public_key()) == KEY_ID
    assert signing.public_key_text(signing.private_key().public_key()) == PUBLIC


def test_the_signature_covers_exactly_the_canonical_bytes_of_the_statement(fixed_key):
    """What an auditor's own tool must rebuild: sorted keys, no spaces, UTF-8 (not \\u escapes)."""
    public = signing._public_keys((PUBLIC,), "")[KEY_ID]
    public.verify(base64.b64decode(SIGNATURE), MESSAGE)  # raises InvalidSignature if the bytes differ
    assert hashlib.sha256(base64.b64decode(PUBLIC)).hexdigest()[:16] == KEY_ID


def test_a_signed_statement_checks_with_only_the_public_key(settings):
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_VERIFY_KEYS = [PUBLIC]
    signed = {**STATEMENT, "key_id": KEY_ID, "signature": SIGNATURE}
    assert signing.check(signed) is signing.Check.VALID
    # Field order is not part of what is signed.
    assert signing.check(dict(reversed(signed.items()))) is signing.Check.VALID


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("username", "mallory"),
        ("through_sequence", 7),
        ("events_pruned", 5),
        ("time", "2026-03-01T02:03:05.123456+00:00"),
        ("type", "checkpoint"),
        ("extra", "a field added after signing"),
    ],
)
def test_a_statement_altered_after_signing_is_invalid(fixed_key, change, value):
    signed = {**STATEMENT, "key_id": KEY_ID, "signature": SIGNATURE}
    assert signing.check({**signed, change: value}) is signing.Check.INVALID


@pytest.mark.parametrize(
    "signature",
    [
        "",  # removed
        "not base64!",
        base64.b64encode(b"\0" * 64).decode(),  # well-formed, wrong
        SIGNATURE[:-4],  # cut short
        "ZZZ",  # base64 alphabet, bad padding
    ],
    ids=["empty", "not base64", "zeros", "truncated", "bad padding"],
)
def test_a_malformed_or_wrong_signature_is_invalid_not_an_error(fixed_key, signature):
    assert signing.check({**STATEMENT, "key_id": KEY_ID, "signature": signature}) is signing.Check.INVALID


def test_a_statement_without_a_signature_field_is_invalid(fixed_key):
    assert signing.check({**STATEMENT, "key_id": KEY_ID}) is signing.Check.INVALID


def test_a_statement_naming_an_unlisted_key_is_invalid(settings):
    other_seed, other_public = signing.new_key_pair()
    settings.AUDIT_SIGNING_KEY = other_seed
    settings.AUDIT_VERIFY_KEYS = [other_public]
    # Validly signed by SEED, but only the other key is listed.
    assert signing.check({**STATEMENT, "key_id": KEY_ID, "signature": SIGNATURE}) is signing.Check.INVALID
    # A forger naming the listed key's ID with a signature of their own fails too.
    other_id = signing.key_id(signing.private_key().public_key())
    assert signing.check({**STATEMENT, "key_id": other_id, "signature": SIGNATURE}) is signing.Check.INVALID


def test_listed_verify_keys_replace_the_signing_keys_public_half(settings):
    """AUDIT_VERIFY_KEYS, when set, are the only keys accepted: during a rotation the old
    public key is listed beside the new one; the signing key's own half is not added."""
    new_seed, new_public = signing.new_key_pair()
    settings.AUDIT_SIGNING_KEY = new_seed
    settings.AUDIT_VERIFY_KEYS = [new_public, PUBLIC]
    new_id = signing.key_id(signing.private_key().public_key())
    assert sorted(signing.verify_keys()) == sorted([new_id, KEY_ID])
    assert signing.check({**STATEMENT, "key_id": KEY_ID, "signature": SIGNATURE}) is signing.Check.VALID
    assert signing.check(signing.sign(dict(STATEMENT))) is signing.Check.VALID

    settings.AUDIT_VERIFY_KEYS = [PUBLIC]  # the new key's public half not listed
    assert list(signing.verify_keys()) == [KEY_ID]
    assert signing.check(signing.sign(dict(STATEMENT))) is signing.Check.INVALID


def test_without_listed_keys_the_signing_keys_public_half_is_the_one_accepted(fixed_key):
    assert list(signing.verify_keys()) == [KEY_ID]
    assert signing.public_key_text(signing.verify_keys()[KEY_ID]) == PUBLIC


def test_with_no_key_at_all_nothing_checks_and_nothing_can_be_signed(settings):
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_VERIFY_KEYS = []
    assert signing.verify_keys() == {}
    assert signing.check({**STATEMENT, "key_id": KEY_ID, "signature": SIGNATURE}) is signing.Check.INVALID
    with pytest.raises(
        signing.NoSigningKey, match=r"^AUDIT_SIGNING_KEY is not set here: statements can be checked, not signed\.$"
    ):
        signing.sign(dict(STATEMENT))


def test_key_pairs_are_new_each_time_and_their_halves_belong_together(settings):
    first, second = signing.new_key_pair(), signing.new_key_pair()
    assert first != second
    for seed, public in (first, second):
        assert len(base64.b64decode(seed, validate=True)) == len(base64.b64decode(public, validate=True)) == 32
        settings.AUDIT_SIGNING_KEY = seed
        assert signing.public_key_text(signing.private_key().public_key()) == public


def test_a_key_is_read_from_standard_base64_of_32_bytes_ignoring_surrounding_space():
    assert signing.decode_key(f"  {SEED}\n") == bytes(range(32))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64!", "not base64"),
        ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "not base64"),  # padding missing
        ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\x00", "not base64"),
        ("-_-_AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "not base64"),  # URL-safe alphabet
        (base64.b64encode(bytes(31)).decode(), "31 bytes, not 32"),
        (base64.b64encode(bytes(33)).decode(), "33 bytes, not 32"),
        ("", "0 bytes, not 32"),
    ],
)
def test_a_key_that_is_not_base64_of_32_bytes_is_refused_saying_why(text, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        signing.decode_key(text)


def test_a_legacy_statement_is_named_unchecked_without_the_old_secret(fixed_key):
    assert signing.is_legacy(LEGACY_CHECKPOINT)
    assert signing.is_legacy({**LEGACY_CHECKPOINT, "key_id": ""})
    assert not signing.is_legacy({**STATEMENT, "key_id": KEY_ID})
    assert signing.check(LEGACY_CHECKPOINT, legacy_fields=LEGACY_FIELDS) is signing.Check.LEGACY_UNCHECKED


def test_a_legacy_hmac_statement_checks_with_the_old_secret_over_its_fields(settings, fixed_key):
    settings.AUDIT_LEGACY_HMAC_KEY = LEGACY_SECRET
    assert signing.check(LEGACY_CHECKPOINT, legacy_fields=LEGACY_FIELDS) is signing.Check.VALID
    # Fields outside the legacy scheme were never signed by it.
    assert signing.check({**LEGACY_CHECKPOINT, "note": "x"}, legacy_fields=LEGACY_FIELDS) is signing.Check.VALID
    # Any signed field changed, or a field left out of the list, and it no longer holds.
    assert signing.check({**LEGACY_CHECKPOINT, "sequence": 6}, legacy_fields=LEGACY_FIELDS) is signing.Check.INVALID
    assert signing.check(LEGACY_CHECKPOINT, legacy_fields=("sequence", "hash")) is signing.Check.INVALID
    no_signature = {name: value for name, value in LEGACY_CHECKPOINT.items() if name != "signature"}
    assert signing.check(no_signature, legacy_fields=LEGACY_FIELDS) is signing.Check.INVALID
    settings.AUDIT_LEGACY_HMAC_KEY = "another-secret"
    assert signing.check(LEGACY_CHECKPOINT, legacy_fields=LEGACY_FIELDS) is signing.Check.INVALID


def test_a_legacy_hmac_over_non_ascii_text_uses_escaped_json(settings, fixed_key):
    """The HMAC scheme hashed json.dumps' default (\\u escapes), unlike Ed25519's UTF-8."""
    settings.AUDIT_LEGACY_HMAC_KEY = LEGACY_SECRET
    statement = {
        "through_sequence": 2,
        "through_hash": "zoë",
        "signature": "5518284334a7be7a6f187a26f942d55c3bf01d517f4d1df57150971b9f1e43ba",
    }
    fields = ("through_sequence", "through_hash")
    assert signing.check(statement, legacy_fields=fields) is signing.Check.VALID


@pytest.mark.parametrize("inserted", ["\n", " ", "*", "-"])
def test_a_signature_with_characters_outside_base64_inserted_is_invalid(fixed_key, inserted):
    """The signature text is part of the statement as kept: altered, it does not verify,
    even where a lenient decoder would skip the character and find the right bytes."""
    signature = SIGNATURE[:10] + inserted + SIGNATURE[10:]
    assert signing.check({**STATEMENT, "key_id": KEY_ID, "signature": signature}) is signing.Check.INVALID
