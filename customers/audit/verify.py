"""Verifying the audit chains: every row's hash and link, every prune record's signature,
and the chains' ends against every signed checkpoint kept outside the database."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from customers.audit import chain, checkpoints, heads, signing
from customers.models import AuditAnchor, HistoryReview, LookupEvent

logger = logging.getLogger(__name__)

# Each row's time is taken under the chain's lock (on PostgreSQL from the database's clock),
# so time follows the sequence. A row earlier than the one before it by more than this was
# given its time by someone (to make a prune take it), or a clock was stepped back further
# than NTP ever steps a healthy one.
TIME_ORDER_TOLERANCE = timedelta(seconds=2)

# --- verification ------------------------------------------------------------------

# The chains a failure can be in (Verification.failed_chain).
EVENTS, REVIEWS = "events", "reviews"


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    bad_sequence: int | None = None
    reason: str = ""
    reviews: int = 0
    # Which chain failed: EVENTS (lookup events) or REVIEWS (review records).
    failed_chain: str = EVENTS
    checkpoints: int = 0
    notes: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        if self.ok:
            reviews = f" and {self.reviews} review record{'s' if self.reviews != 1 else ''}" if self.reviews else ""
            return f"OK: {self.events} event{'s' if self.events != 1 else ''}{reviews} verified"
        if self.bad_sequence is None:  # a statement that names no sequence: nowhere in the chain to point at
            return f"FAILED: {self.reason}"
        where = "review record" if self.failed_chain == REVIEWS else "sequence"
        return f"FAILED at {where} {self.bad_sequence}: {self.reason}"


class _Failed(Exception):
    def __init__(self, sequence: int | None, reason: str, chain_name: str = EVENTS) -> None:
        super().__init__(reason)
        self.sequence, self.reason, self.chain_name = sequence, reason, chain_name


_LEGACY_CHECKPOINT_FIELDS = ("sequence", "hash", "time")
_LEGACY_PRUNE_FIELDS = ("through_sequence", "through_hash")


def _checked_statements(statements: list[dict[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    """The statements whose signatures hold; a forged or altered one fails verification,
    a legacy one without the legacy secret is named and set aside."""
    usable = []
    legacy_unchecked = 0
    for statement in statements:
        kind = statement.get("type", "checkpoint")
        fields = _LEGACY_PRUNE_FIELDS if kind == "prune" else _LEGACY_CHECKPOINT_FIELDS
        result = signing.check(statement, legacy_fields=fields)
        sequence = statement.get("through_sequence" if kind == "prune" else "sequence")
        if result is signing.Check.INVALID:
            raise _Failed(
                sequence,
                f"the {kind} statement's signature is not valid (forged or altered, or signed by a key "
                "not in AUDIT_VERIFY_KEYS)",
            )
        if result is signing.Check.LEGACY_UNCHECKED:
            legacy_unchecked += 1
            continue
        usable.append(statement)
    if legacy_unchecked:
        notes.append(
            f"{legacy_unchecked} legacy HMAC statement{'s' if legacy_unchecked != 1 else ''} in the checkpoint "
            "file not checked and not used (set AUDIT_LEGACY_HMAC_KEY to check them)"
        )
    return usable


def sequence_number(text: str) -> int:
    """A command-line sequence: a whole number from 1, or argparse's clear refusal."""
    if not text.strip().isdigit() or not 1 <= int(text) < 2**63:
        raise argparse.ArgumentTypeError(f"{text!r} is not a sequence: give a whole number such as 1200")
    return int(text)


class UnknownLegacyPrune(ValueError):
    """--accept-legacy-through names no unverifiable prune record: nothing is accepted."""


def unverifiable_prunes() -> list[int]:
    """The prune records no signature vouches for (unsigned, or legacy HMAC without
    AUDIT_LEGACY_HMAC_KEY), by the last sequence each removed."""
    return sorted(
        anchor.through_sequence
        for anchor in AuditAnchor.objects.all()
        if signing.check(checkpoints.prune_statement(anchor), legacy_fields=_LEGACY_PRUNE_FIELDS)
        is signing.Check.LEGACY_UNCHECKED
    )


def check_accepted_legacy(accept_legacy_through: int | None) -> None:
    """An operator's acceptance must name one of the unverifiable prune records exactly,
    so it never waves through a record added after they looked."""
    if accept_legacy_through is None:
        return
    legacy = unverifiable_prunes()
    if accept_legacy_through not in legacy:
        listed = ", ".join(map(str, legacy)) if legacy else "none"
        raise UnknownLegacyPrune(
            f"--accept-legacy-through {accept_legacy_through} names no unsigned or unverifiable prune record "
            f"(those there are end at sequence: {listed}); nothing was accepted"
        )


def _checked_anchors(notes: list[str], accept_legacy_through: int | None) -> dict[int, AuditAnchor]:
    anchors = {anchor.through_sequence: anchor for anchor in AuditAnchor.objects.all()}
    accepted = []
    for anchor in sorted(anchors.values(), key=lambda anchor: anchor.through_sequence):
        result = signing.check(checkpoints.prune_statement(anchor), legacy_fields=_LEGACY_PRUNE_FIELDS)
        if result is signing.Check.INVALID:
            raise _Failed(
                anchor.through_sequence + 1,
                "the prune record's signature is not valid (forged or altered, or signed by a key "
                "not in AUDIT_VERIFY_KEYS)",
            )
        if result is signing.Check.LEGACY_UNCHECKED:
            if accept_legacy_through is None or anchor.through_sequence > accept_legacy_through:
                raise _Failed(
                    anchor.through_sequence + 1,
                    f"the prune record through sequence {anchor.through_sequence} is "
                    f"{'signed with the legacy HMAC scheme' if anchor.signature else 'not signed'}, so nothing "
                    "vouches for that deletion (set AUDIT_LEGACY_HMAC_KEY to check an HMAC, or, having checked "
                    f"it another way, accept it with --accept-legacy-through {anchor.through_sequence})",
                )
            accepted.append(anchor.through_sequence)
    if accepted:
        notes.append(
            "ACCEPTED WITHOUT A SIGNATURE on the operator's word (--accept-legacy-through "
            f"{accept_legacy_through}): prune record(s) through sequence {', '.join(map(str, accepted))}"
        )
    return anchors


def verify_chain(
    *, statements: list[dict[str, Any]] | None = None, accept_legacy_through: int | None = None
) -> Verification:
    """Walk both chains in sequence order against every signed statement given (from
    the checkpoint file); report the first thing that does not hold. A prune record no
    signature vouches for fails, unless the operator accepts it by its sequence
    (``accept_legacy_through``, checked first with ``check_accepted_legacy``)."""
    notes: list[str] = []
    counts = {"events": 0, "reviews": 0, "checkpoints": 0}
    try:
        usable = _checked_statements(statements or [], notes)
        anchors = _checked_anchors(notes, accept_legacy_through)
        checkpoints = [s for s in usable if s.get("type", "checkpoint") == "checkpoint"]
        counts["checkpoints"] = len(checkpoints)
        _check_prunes_kept([s for s in usable if s.get("type") == "prune"], anchors)
        last_event = _walk_events(anchors, checkpoints, counts)
        last_review = _walk_reviews(checkpoints, counts)
        _check_ends(checkpoints, last_event, last_review)
    except _Failed as failed:
        return Verification(
            False,
            counts["events"],
            failed.sequence,
            failed.reason,
            reviews=counts["reviews"],
            failed_chain=failed.chain_name,
            checkpoints=counts["checkpoints"],
            notes=tuple(notes),
        )
    return Verification(
        True, counts["events"], reviews=counts["reviews"], checkpoints=counts["checkpoints"], notes=tuple(notes)
    )


def _check_prunes_kept(prunes: list[dict[str, Any]], anchors: dict[int, AuditAnchor]) -> None:
    for statement in prunes:
        sequence = statement.get("through_sequence")
        # A sequence is a whole number: not true or 1.0 (which a dict finds as 1), not a list.
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            raise _Failed(None, "a prune statement names no sequence")
        anchor = anchors.get(sequence)
        if anchor is None:
            raise _Failed(sequence, "the checkpoint file records a prune that is not in the database (deleted)")
        if anchor.through_hash != statement.get("through_hash"):
            raise _Failed(sequence, "the prune record differs from the one in the checkpoint file")


def _claims(checkpoints: list[dict[str, Any]], sequence_key: str, hash_key: str) -> dict[int, set[str]]:
    claims: dict[int, set[str]] = {}
    for statement in checkpoints:
        sequence = statement.get(sequence_key)
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
            raise _Failed(None, "a checkpoint names no sequence")
        if sequence:
            claims.setdefault(sequence, set()).add(str(statement.get(hash_key)))
    return claims


def _walk_events(anchors: dict[int, AuditAnchor], checkpoints: list[dict[str, Any]], counts: dict[str, int]) -> int:
    claims = _claims(checkpoints, "sequence", "hash")
    # A prune record at a checkpoint's sequence names the hash the checkpoint saw there.
    for sequence, hashes in claims.items():
        anchor = anchors.get(sequence)
        if anchor is not None and hashes != {anchor.through_hash}:
            raise _Failed(
                sequence, "the prune record at the checkpoint's sequence has a different hash (the log was rewritten)"
            )
    expected: int | None = None
    previous_hash: str  # set from the first row
    previous_time: datetime | None = None
    rows = LookupEvent.objects.order_by("sequence").values(*heads.CHAIN_FIELDS, *heads.LATER_CHAIN_FIELDS, "hash")
    for values in rows.iterator(chunk_size=5000):
        sequence = values["sequence"]
        if expected is None:
            _check_start(sequence, anchors)
            previous_hash = heads.GENESIS if sequence == 1 else anchors[sequence - 1].through_hash
        elif sequence != expected:
            raise _Failed(expected, "this event is missing (a row was deleted)")
        if values["prev_hash"] != previous_hash:
            raise _Failed(sequence, "it does not link to the event before it (a row was inserted or reordered)")
        if chain.lookup_hash(values) != values["hash"]:
            raise _Failed(sequence, "its stored values do not match its hash (a row was edited)")
        if sequence in claims and claims[sequence] != {values["hash"]}:
            raise _Failed(sequence, "the event at the checkpoint has a different hash (the log was rewritten)")
        _check_time_order(sequence, values["created_at"], previous_time, "event")
        previous_hash, previous_time, expected = values["hash"], values["created_at"], sequence + 1
        counts["events"] += 1
    return max([(expected or 1) - 1, *anchors])


def _walk_reviews(checkpoints: list[dict[str, Any]], counts: dict[str, int]) -> int:
    claims = _claims(
        [s for s in checkpoints if "review_sequence" in s], "review_sequence", "review_hash"
    )  # legacy checkpoints predate the review chain
    previous_hash, expected = heads.GENESIS, 1
    previous_time: datetime | None = None
    rows = HistoryReview.objects.order_by("sequence").values(*chain.REVIEW_FIELDS, "hash")
    for values in rows.iterator(chunk_size=5000):
        sequence = values["sequence"]
        if sequence != expected:
            raise _Failed(expected, "this review record is missing (a row was deleted)", REVIEWS)
        if values["prev_hash"] != previous_hash:
            raise _Failed(
                sequence, "it does not link to the record before it (a row was inserted or reordered)", REVIEWS
            )
        if chain.review_hash(values) != values["hash"]:
            raise _Failed(sequence, "its stored values do not match its hash (a row was edited)", REVIEWS)
        if sequence in claims and claims[sequence] != {values["hash"]}:
            raise _Failed(sequence, "the record at the checkpoint has a different hash (rewritten)", REVIEWS)
        _check_time_order(sequence, values["created_at"], previous_time, "record", REVIEWS)
        previous_hash, previous_time, expected = values["hash"], values["created_at"], sequence + 1
        counts["reviews"] += 1
    return expected - 1


def _check_ends(checkpoints: list[dict[str, Any]], last_event: int, last_review: int) -> None:
    """A checkpoint beyond the end of a chain: rows were cut off the end, or the table emptied."""
    for statement in checkpoints:
        if statement["sequence"] > last_event:
            raise _Failed(
                statement["sequence"],
                f"the log ends at sequence {last_event}, before this checkpoint (rows removed from the end, "
                "or the table emptied)",
            )
        review_sequence = statement.get("review_sequence")
        if isinstance(review_sequence, int) and review_sequence > last_review:
            raise _Failed(
                review_sequence,
                f"the review records end at {last_review}, before this checkpoint (records removed from the end, "
                "or the table emptied)",
                REVIEWS,
            )


def _check_time_order(
    sequence: int, time: datetime, previous: datetime | None, what: str, chain_name: str = EVENTS
) -> None:
    if previous is not None and time < previous - TIME_ORDER_TOLERANCE:
        raise _Failed(
            sequence,
            f"its time ({time.isoformat()}) is earlier than the {what} before it ({previous.isoformat()}) by more "
            f"than {TIME_ORDER_TOLERANCE.total_seconds():g} s: times run backwards (a row's time was chosen, or "
            "the clock was stepped back)",
            chain_name,
        )


def _check_start(first_sequence: int, anchors: dict[int, AuditAnchor]) -> None:
    """The log starts at 1 or just after a prune record, and no prune record says its
    first event was deleted (rows restored from a backup, or inserted)."""
    pruned_through = min((through for through in anchors if through >= first_sequence), default=None)
    if pruned_through is not None:
        raise _Failed(
            first_sequence,
            f"the prune through sequence {pruned_through} deleted this event, yet it is in the log "
            "(restored or inserted)",
        )
    if first_sequence != 1 and first_sequence - 1 not in anchors:
        raise _Failed(max(anchors, default=0) + 1, _missing_start(first_sequence))


def _missing_start(first_sequence: int) -> str:
    return f"the log starts at sequence {first_sequence} and no prune explains the rows before it (rows deleted)"
