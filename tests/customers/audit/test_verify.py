"""verify_audit_log's answers, as an auditor reads them, for what the chain and checkpoint
tests leave out: statements in the checkpoint file that are altered, malformed or of the
old kinds, prune records the file contradicts, several unsigned prune records, a review
chain rewritten or reordered, and the edges of the time-order tolerance and of a sequence
given on the command line. (The chains: test_chain.py; checkpoints and prune:
test_checkpoints.py.)"""

import hashlib
import hmac
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from customers.audit import checkpoints, heads, signing
from customers.audit.log import record_review
from customers.audit.verify import Verification, verify_chain
from customers.models import AuditAnchor, HistoryReview, LookupEvent
from tests.support.audit import REVIEWS, TABLE, record, tamper, verify

NOT_VALID = "signature is not valid (forged or altered, or signed by a key not in AUDIT_VERIFY_KEYS)"


@pytest.fixture
def checkpoint_file(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    return tmp_path / "checkpoints.jsonl"


@pytest.fixture
def events(db, sales_user):
    return [record(sales_user, project_id) for project_id in (2143, 2144, 2145, 2146, 2147, 2148)]


@pytest.fixture
def reviews(db, admin_user_role):
    return [
        record_review(user=admin_user_role, kind=HistoryReview.Kind.VIEW, detail={"project": project_id}, rows=1)
        for project_id in (2143, 2144, 2145)
    ]


def keep(path, *statements: dict) -> None:
    path.write_text("".join(json.dumps(statement) + "\n" for statement in statements))


def signed_prune(through: int, through_hash: str, *, username: str = "ada.admin") -> AuditAnchor:
    """A prune record as prune_audit_log writes it, signed with the portal's key."""
    anchor = AuditAnchor(
        created_at=timezone.now(), username=username, through_sequence=through, through_hash=through_hash,
        events_pruned=through, older_than_days=365,
    )  # fmt: skip
    signed = signing.sign({k: v for k, v in checkpoints.prune_statement(anchor).items() if k != "signature"})
    anchor.key_id, anchor.signature = signed["key_id"], signed["signature"]
    anchor.save()
    return anchor


def unsigned_prune(through: int, through_hash: str) -> AuditAnchor:
    return AuditAnchor.objects.create(
        username="prune_audit_log", through_sequence=through, through_hash=through_hash, events_pruned=2,
        older_than_days=365, key_id="", signature="",
    )  # fmt: skip


def notes(*args: str) -> list[str]:
    """The notes verify_audit_log writes to stderr beside its answer."""
    err = StringIO()
    call_command("verify_audit_log", *args, stdout=StringIO(), stderr=err)
    return err.getvalue().splitlines()


def legacy_hmac(secret: str, payload: dict) -> str:
    message = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# --- the statements in the checkpoint file ----------------------------------------------


def test_an_altered_prune_statement_in_the_checkpoint_file_fails_at_the_sequence_it_names(events, checkpoint_file):
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 2")
    anchor = signed_prune(2, events[1].hash)
    keep(checkpoint_file, {**checkpoints.prune_statement(anchor), "username": "someone.else"})
    assert verify() == f"ERROR FAILED at sequence 2: the prune statement's {NOT_VALID}"


def test_a_statement_without_a_type_is_a_checkpoint(events, checkpoint_file):
    """Checkpoints printed before statements had types: one that holds is counted and used,
    one altered is named as a checkpoint."""
    statement = {k: v for k, v in checkpoints.checkpoint().items() if k not in ("type", "signature")}
    untyped = signing.sign(statement)
    keep(checkpoint_file, untyped)
    assert verify() == f"OK: 6 events verified; 1 checkpoint holds ({checkpoint_file}, latest at sequence 6)"
    keep(checkpoint_file, {**untyped, "hash": "f" * 64})
    assert verify() == f"ERROR FAILED at sequence 6: the checkpoint statement's {NOT_VALID}"
    # Used, not merely counted: a rewrite of the log is caught against it.
    keep(checkpoint_file, untyped)
    tamper(f"DELETE FROM {TABLE} WHERE sequence >= 5")
    assert verify().startswith("ERROR FAILED at sequence 6: the log ends at sequence 4, before this checkpoint")


def test_a_legacy_prune_statement_in_the_file_checks_over_the_prune_fields(settings, events, checkpoint_file):
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 2")
    payload = {"through_sequence": 2, "through_hash": events[1].hash}
    anchor = AuditAnchor.objects.create(
        username="old", events_pruned=2, older_than_days=1, signature=legacy_hmac("old-secret", payload), **payload
    )
    keep(checkpoint_file, checkpoints.prune_statement(anchor))
    settings.AUDIT_LEGACY_HMAC_KEY = "old-secret"
    assert verify() == f"OK: 4 events verified; 0 checkpoints hold ({checkpoint_file})"


def test_several_legacy_statements_are_counted_in_the_note(settings, events, checkpoint_file):
    legacy = [{"sequence": n, "hash": events[n - 1].hash, "time": "2026-01-01T00:00:00+00:00"} for n in (3, 6)]
    keep(checkpoint_file, *({**s, "signature": legacy_hmac("old-secret", s)} for s in legacy))
    assert notes() == [
        "note: 2 legacy HMAC statements in the checkpoint file not checked and not used (set AUDIT_LEGACY_HMAC_KEY "
        "to check them)"
    ]
    assert verify() == f"OK: 6 events verified; 0 checkpoints hold ({checkpoint_file})"


@pytest.mark.parametrize(
    "sequence",
    [None, "6", -1, True, 6.0],
    ids=["missing", "text", "negative", "boolean", "float"],
)
def test_a_signed_checkpoint_naming_no_sequence_fails_verification(events, checkpoint_file, sequence):
    statement = {k: v for k, v in checkpoints.checkpoint().items() if k not in ("sequence", "key_id", "signature")}
    if sequence is not None:
        statement["sequence"] = sequence
    keep(checkpoint_file, signing.sign(statement))
    assert verify() == "ERROR FAILED: a checkpoint names no sequence"


def test_a_checkpoint_of_an_empty_log_holds_once_events_follow(db, sales_user, checkpoint_file):
    checkpoints.take_checkpoint()  # sequence 0: nothing to compare yet
    record(sales_user, 2143)
    assert verify() == f"OK: 1 event verified; 1 checkpoint holds ({checkpoint_file}, latest at sequence 0)"


# --- prune records ------------------------------------------------------------------------


def test_a_prune_record_differing_from_the_one_in_the_checkpoint_file_fails(events, checkpoint_file):
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 2")
    anchor = signed_prune(2, events[1].hash)
    kept = checkpoints.prune_statement(anchor)
    # The file's copy says the prune removed through another hash (signed by the key holder).
    other = signing.sign(
        {k: v for k, v in kept.items() if k not in ("key_id", "signature")} | {"through_hash": "e" * 64}
    )
    keep(checkpoint_file, other)
    assert verify() == "ERROR FAILED at sequence 2: the prune record differs from the one in the checkpoint file"
    keep(checkpoint_file, kept)
    assert verify() == f"OK: 4 events verified; 0 checkpoints hold ({checkpoint_file})"


def test_rows_deleted_after_a_signed_prune_are_named_from_the_prune_on(events):
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 4")
    signed_prune(2, events[1].hash)
    assert verify() == (
        "ERROR FAILED at sequence 3: the log starts at sequence 5 and no prune explains the rows before it "
        "(rows deleted)"
    )


def test_all_events_pruned_the_prune_record_is_where_the_log_ends(events, checkpoint_file):
    tamper(f"DELETE FROM {TABLE}")
    signed_prune(6, events[-1].hash)
    checkpoints.take_checkpoint()  # taken after the prune: the head is the prune record's
    assert verify() == f"OK: 0 events verified; 1 checkpoint holds ({checkpoint_file}, latest at sequence 6)"


def test_several_unsigned_prune_records_are_listed_in_order_and_accepted_together(events):
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 4")
    unsigned_prune(4, events[3].hash)
    unsigned_prune(2, events[1].hash)
    assert verify("--accept-legacy-through", "3") == (
        "ERROR --accept-legacy-through 3 names no unsigned or unverifiable prune record (those there are end at "
        "sequence: 2, 4); nothing was accepted"
    )
    assert verify("--accept-legacy-through", "2").startswith(
        "ERROR FAILED at sequence 5: the prune record through sequence 4 is not signed"
    )
    assert notes("--accept-legacy-through", "4") == [
        "note: ACCEPTED WITHOUT A SIGNATURE on the operator's word (--accept-legacy-through 4): prune record(s) "
        "through sequence 2, 4"
    ]
    assert verify("--accept-legacy-through", "4") == (
        "OK: 2 events verified; unsigned prune records through sequence 4 accepted on your word"
    )


def test_a_signed_prune_record_needs_no_acceptance_and_is_not_listed(events):
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 2")
    signed_prune(2, events[1].hash)
    assert notes() == []
    assert verify("--accept-legacy-through", "2") == (
        "ERROR --accept-legacy-through 2 names no unsigned or unverifiable prune record (those there are end at "
        "sequence: none); nothing was accepted"
    )


@pytest.mark.parametrize("given", ["1", " 7 ", "9223372036854775807"])
def test_verify_takes_any_sequence_from_1_to_the_largest_the_database_holds(events, given):
    assert verify("--accept-legacy-through", given) == (
        f"ERROR --accept-legacy-through {given.strip()} names no unsigned or unverifiable prune record (those there "
        "are end at sequence: none); nothing was accepted"
    )


def test_verify_refuses_a_sequence_beyond_what_the_database_holds(events):
    assert verify("--accept-legacy-through", "9223372036854775808") == (
        "ERROR Error: argument --accept-legacy-through: '9223372036854775808' is not a sequence: give a whole "
        "number such as 1200"
    )


# --- the review chain ---------------------------------------------------------------------


def test_a_rewritten_review_chain_is_caught_against_the_checkpoint_file(reviews, admin_user_role, checkpoint_file):
    checkpoints.take_checkpoint()
    tamper(f"DELETE FROM {REVIEWS}", table=REVIEWS)
    for project_id in (2143, 2144, 9999):  # a consistent chain that never showed project 2145
        record_review(user=admin_user_role, kind=HistoryReview.Kind.VIEW, detail={"project": project_id}, rows=1)
    assert verify("--checkpoints", "/dev/null") == (
        "OK: 0 events and 3 review records verified; 0 checkpoints hold (/dev/null)"
    )
    assert verify() == "ERROR FAILED at review record 3: the record at the checkpoint has a different hash (rewritten)"


def test_reordered_review_records_are_caught(reviews):
    tamper(f"UPDATE {REVIEWS} SET sequence = 1000 WHERE sequence = 2", table=REVIEWS)
    tamper(f"UPDATE {REVIEWS} SET sequence = 2 WHERE sequence = 3", table=REVIEWS)
    tamper(f"UPDATE {REVIEWS} SET sequence = 3 WHERE sequence = 1000", table=REVIEWS)
    assert verify() == (
        "ERROR FAILED at review record 2: it does not link to the record before it (a row was inserted or reordered)"
    )


def test_a_deleted_first_review_record_is_caught(reviews):
    tamper(f"DELETE FROM {REVIEWS} WHERE sequence = 1", table=REVIEWS)
    assert verify() == "ERROR FAILED at review record 1: this review record is missing (a row was deleted)"


def test_one_review_record_is_counted_in_the_singular(events, reviews):
    tamper(f"DELETE FROM {REVIEWS} WHERE sequence >= 2", table=REVIEWS)
    assert verify() == "OK: 6 events and 1 review record verified"


# --- time order ---------------------------------------------------------------------------


def _append_event_at(user, at) -> LookupEvent:
    sequence, prev_hash = heads.head()
    event = LookupEvent(
        sequence=sequence + 1, created_at=at, user=user, username=user.username, project_id=4242,
        outcome="found", channel="web", prev_hash=prev_hash,
    )  # fmt: skip
    event.hash = heads.hash_of(event)
    event.save(force_insert=True)
    return event


def test_an_event_exactly_two_seconds_earlier_than_the_one_before_still_verifies(db, sales_user):
    first = record(sales_user, 2143)
    second = _append_event_at(sales_user, first.created_at - timedelta(seconds=2))
    assert verify() == "OK: 2 events verified"
    _append_event_at(sales_user, second.created_at - timedelta(seconds=2, microseconds=1))
    assert verify().startswith("ERROR FAILED at sequence 3: its time (")


def test_a_review_record_earlier_than_the_one_before_it_is_named_a_record(reviews, admin_user_role):
    sequence, prev_hash = heads.review_head()
    previous = HistoryReview.objects.get(sequence=sequence)
    earlier = previous.created_at - timedelta(days=3)
    review = HistoryReview(
        sequence=sequence + 1, prev_hash=prev_hash, created_at=earlier, user=admin_user_role,
        username=admin_user_role.username, kind=HistoryReview.Kind.VIEW, detail={}, rows=0,
    )  # fmt: skip
    review.hash = heads.review_hash_of(review)
    review.save(force_insert=True)
    stored = HistoryReview.objects.get(sequence=sequence + 1).created_at
    assert verify() == (
        f"ERROR FAILED at review record 4: its time ({stored.isoformat()}) is earlier than the record before it "
        f"({previous.created_at.isoformat()}) by more than 2 s: times run backwards (a row's time was chosen, or "
        "the clock was stepped back)"
    )


def test_the_notes_are_written_beside_a_failure_too(settings, events, checkpoint_file):
    legacy = {"sequence": 3, "hash": events[2].hash, "time": "2026-01-01T00:00:00+00:00"}
    keep(checkpoint_file, {**legacy, "signature": legacy_hmac("old-secret", legacy)})
    tamper(f"UPDATE {TABLE} SET project_id = 1 WHERE sequence = 4")
    err = StringIO()
    with pytest.raises(CommandError, match=r"^FAILED at sequence 4: its stored values do not match its hash"):
        call_command("verify_audit_log", stdout=StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        "note: 1 legacy HMAC statement in the checkpoint file not checked and not used (set AUDIT_LEGACY_HMAC_KEY "
        "to check them)"
    ]


def test_with_the_legacy_key_set_a_checked_hmac_prune_record_needs_no_acceptance(settings, events):
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 2")
    payload = {"through_sequence": 2, "through_hash": events[1].hash}
    AuditAnchor.objects.create(
        username="old", events_pruned=2, older_than_days=1, signature=legacy_hmac("old-secret", payload), **payload
    )
    settings.AUDIT_LEGACY_HMAC_KEY = "old-secret"
    assert verify() == "OK: 4 events verified"
    assert verify("--accept-legacy-through", "2") == (
        "ERROR --accept-legacy-through 2 names no unsigned or unverifiable prune record (those there are end at "
        "sequence: none); nothing was accepted"
    )


# --- what a verification reports -------------------------------------------------------------


@pytest.mark.parametrize(
    "through", [[1], {"sequence": 1}, True, "1", 1.0], ids=["list", "object", "true", "text", "float"]
)
def test_a_signed_prune_statement_naming_no_sequence_fails_never_crashes(events, checkpoint_file, through):
    """Only a whole number names a prune record: true or 1.0 must not stand for the record
    through sequence 1, and a list or an object names none."""
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 1")
    anchor = signed_prune(1, events[0].hash)
    statement = {k: v for k, v in checkpoints.prune_statement(anchor).items() if k not in ("key_id", "signature")}
    keep(checkpoint_file, signing.sign({**statement, "through_sequence": through}))
    assert verify() == "ERROR FAILED: a prune statement names no sequence"


@pytest.mark.parametrize(
    ("deleted", "prunes"),
    [((1, 2, 3, 4), (4,)), ((), (4,)), ((1, 2), (2, 4)), ((1, 2, 3), (4,))],
    ids=["none-back", "all-back", "back-after-an-earlier-prune", "the-last-one-back"],
)
def test_events_a_prune_deleted_that_are_back_in_the_log_are_named(events, deleted, prunes):
    """Rows a prune deleted, restored from a backup: the first of them is named, however
    many came back."""
    if deleted:
        tamper(f"DELETE FROM {TABLE} WHERE sequence <= {max(deleted)}")
    for through in prunes:
        signed_prune(through, events[through - 1].hash)
    if deleted == (1, 2, 3, 4):
        assert verify() == "OK: 2 events verified"  # nothing back: the prune record explains the start
        return
    first = (max(deleted) + 1) if deleted else 1
    assert verify() == (
        f"ERROR FAILED at sequence {first}: the prune through sequence 4 deleted this event, yet it is in the log "
        "(restored or inserted)"
    )


def test_an_event_a_prune_deleted_that_is_back_in_the_log_is_named(events):
    """An insider restores pruned rows from a backup: the prune record says they were deleted."""
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 2")
    signed_prune(4, events[3].hash)  # the record of a prune through 4, whose rows 3 and 4 are back
    assert verify() == (
        "ERROR FAILED at sequence 3: the prune through sequence 4 deleted this event, yet it is in the log "
        "(restored or inserted)"
    )


def test_a_verification_that_holds_counts_events_review_records_and_checkpoints(events, reviews, checkpoint_file):
    checkpoints.take_checkpoint()
    result = verify_chain(statements=checkpoints.checkpoint_file_statements())
    assert (result.ok, result.events, result.reviews, result.checkpoints) == (True, 6, 3, 1)
    assert verify() == (
        f"OK: 6 events and 3 review records verified; 1 checkpoint holds ({checkpoint_file}, latest at sequence 6)"
    )


def test_a_failed_verification_says_how_far_it_got(events, reviews, checkpoint_file):
    """What was checked before the failure: every event, and the review records before the bad one."""
    checkpoints.take_checkpoint()
    tamper(f"UPDATE {REVIEWS} SET rows = 99 WHERE sequence = 2", table=REVIEWS)
    result = verify_chain(statements=checkpoints.checkpoint_file_statements())
    assert result == Verification(
        ok=False,
        events=6,
        bad_sequence=2,
        reason="its stored values do not match its hash (a row was edited)",
        reviews=1,
        failed_chain="reviews",
        checkpoints=1,
    )


def test_a_statement_that_fails_its_signature_stops_before_anything_is_counted(events, checkpoint_file):
    keep(checkpoint_file, {**checkpoints.checkpoint(), "hash": "f" * 64})
    result = verify_chain(statements=checkpoints.checkpoint_file_statements())
    assert (result.ok, result.events, result.reviews, result.checkpoints) == (False, 0, 0, 0)
    assert result.reason == f"the checkpoint statement's {NOT_VALID}"
