"""Signed statements: Ed25519 checkpoints kept outside the database (taken automatically),
prune records, key rotation, legacy HMAC statements, and prune refusing to hide tampering."""

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from customers.audit import checkpoints, heads, signing
from customers.audit.log import record_review
from customers.models import AuditAnchor, HistoryReview, LookupEvent
from tests.support.audit import ANCHORS, REVIEWS, TABLE, backdated_chain, record, tamper, verify
from tests.support.processes import ROOT


@pytest.fixture
def checkpoint_file(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    return tmp_path / "checkpoints.jsonl"


@pytest.fixture
def chain(db, sales_user, admin_user_role):
    events = [record(sales_user, project_id) for project_id in (2143, 2144, 2145, 2146, 2147)]
    record_review(user=admin_user_role, kind=HistoryReview.Kind.VIEW, detail={"project": 2143}, rows=1)
    return events


def statements(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def use_key(settings, seed: str, *verify_keys: str) -> None:
    settings.AUDIT_SIGNING_KEY = seed
    settings.AUDIT_VERIFY_KEYS = list(verify_keys)


def test_it_signs_checkpoints_with_ed25519_naming_the_key(settings, chain, checkpoint_file):
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    statement = json.loads(out.getvalue())
    assert (statement["sequence"], statement["hash"]) == (5, chain[-1].hash)
    assert (statement["review_sequence"], statement["type"]) == (1, "checkpoint")
    public = signing.private_key().public_key()
    assert statement["key_id"] == signing.key_id(public)
    unsigned = {k: v for k, v in statement.items() if k != "signature"}
    message = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    public.verify(base64.b64decode(statement["signature"]), message)  # raises if not Ed25519 over the statement
    assert statements(checkpoint_file) == [statement]
    assert verify("--checkpoints", str(checkpoint_file)) == (
        f"OK: 5 events and 1 review record verified; 1 checkpoint holds ({checkpoint_file}, latest at sequence 5)"
    )


def test_a_whole_table_rewrite_is_caught_against_the_checkpoint_file(chain, sales_user, checkpoint_file):
    checkpoints.take_checkpoint()
    tamper(f"DELETE FROM {TABLE}")  # a consistent chain that never contained project 2145
    for project_id in (2143, 2144, 2146, 2147, 2148):
        record(sales_user, project_id)
    assert (
        verify("--checkpoints", "/dev/null")
        == "OK: 5 events and 1 review record verified; 0 checkpoints hold (/dev/null)"
    )
    assert verify("--checkpoints", str(checkpoint_file)) == (
        "ERROR FAILED at sequence 5: the event at the checkpoint has a different hash (the log was rewritten)"
    )


def test_rows_cut_off_the_end_are_caught_through_the_checkpoint_file(chain, checkpoint_file):
    checkpoints.take_checkpoint()
    tamper(f"DELETE FROM {TABLE} WHERE sequence >= 4")
    assert verify("--checkpoints", "/dev/null").startswith("OK: 3 events")  # no other way to tell
    assert verify("--checkpoints", str(checkpoint_file)) == (
        "ERROR FAILED at sequence 5: the log ends at sequence 3, before this checkpoint "
        "(rows removed from the end, or the table emptied)"
    )


def test_an_emptied_table_is_caught_through_the_checkpoint_file(chain, checkpoint_file):
    checkpoints.take_checkpoint()
    tamper(f"DELETE FROM {TABLE}")
    tamper(f"DELETE FROM {REVIEWS}", table=REVIEWS)
    assert verify("--checkpoints", "/dev/null") == "OK: 0 events verified; 0 checkpoints hold (/dev/null)"
    assert verify("--checkpoints", str(checkpoint_file)).startswith(
        "ERROR FAILED at sequence 5: the log ends at sequence 0, before this checkpoint"
    )
    # By default the verifier reads AUDIT_CHECKPOINT_FILE.
    assert verify().startswith("ERROR FAILED at sequence 5: the log ends at sequence 0")


def test_review_records_cut_off_the_end_are_caught(chain, admin_user_role, checkpoint_file):
    record_review(user=admin_user_role, kind=HistoryReview.Kind.EXPORT, detail={}, rows=5)
    checkpoints.take_checkpoint()
    tamper(f"DELETE FROM {REVIEWS} WHERE sequence = 2", table=REVIEWS)
    assert verify() == (
        "ERROR FAILED at review record 2: the review records end at 1, before this checkpoint "
        "(records removed from the end, or the table emptied)"
    )


def test_a_checkpoint_signed_with_another_key_is_refused(settings, chain, checkpoint_file):
    mallory, _ = signing.new_key_pair()
    real = settings.AUDIT_SIGNING_KEY
    settings.AUDIT_SIGNING_KEY = mallory
    checkpoints.take_checkpoint()  # a forger's statement, in the file
    settings.AUDIT_SIGNING_KEY = real
    assert verify() == (
        "ERROR FAILED at sequence 5: the checkpoint statement's signature is not valid (forged or altered, or "
        "signed by a key not in AUDIT_VERIFY_KEYS)"
    )


def test_an_altered_checkpoint_is_refused(chain, checkpoint_file):
    statement = checkpoints.take_checkpoint()
    checkpoint_file.write_text(json.dumps({**statement, "hash": "f" * 64}) + "\n")
    assert "the checkpoint statement's signature is not valid" in verify()


def test_old_statements_verify_after_rotation_while_the_old_public_key_is_listed(settings, chain, checkpoint_file):
    old_seed, old_public = signing.new_key_pair()
    new_seed, new_public = signing.new_key_pair()
    use_key(settings, old_seed)
    checkpoints.take_checkpoint()
    use_key(settings, new_seed, new_public, old_public)
    record(chain[0].user, 2150)
    checkpoints.take_checkpoint()
    key_ids = [statement["key_id"] for statement in statements(checkpoint_file)]
    assert key_ids[0] != key_ids[1]
    assert (
        verify()
        == f"OK: 6 events and 1 review record verified; 2 checkpoints hold ({checkpoint_file}, latest at sequence 6)"
    )
    use_key(settings, new_seed, new_public)  # the old key dropped from the list
    assert "signed by a key not in AUDIT_VERIFY_KEYS" in verify()


def test_an_auditor_verifies_with_only_the_public_key(settings, chain, checkpoint_file):
    checkpoints.take_checkpoint()
    public = signing.public_key_text(signing.private_key().public_key())
    use_key(settings, "", public)
    assert verify().startswith("OK: 5 events and 1 review record verified; 1 checkpoint")
    with pytest.raises(CommandError, match="can be checked, not signed"):
        call_command("audit_checkpoint", stdout=StringIO())


def test_audit_keygen_prints_a_pair_that_signs_and_verifies(settings, chain, checkpoint_file):
    out = StringIO()
    call_command("audit_keygen", stdout=out, stderr=StringIO())
    lines = dict(line.split("=", 1) for line in out.getvalue().split())
    assert len(base64.b64decode(lines["AUDIT_SIGNING_KEY"])) == len(base64.b64decode(lines["AUDIT_VERIFY_KEYS"])) == 32
    use_key(settings, lines["AUDIT_SIGNING_KEY"], lines["AUDIT_VERIFY_KEYS"])
    checkpoints.take_checkpoint()
    assert verify().startswith("OK: 5 events")


@pytest.mark.parametrize(
    "environment",
    [{}, {"DJANGO_DEBUG": "false"}, {"AUDIT_SIGNING_KEY": "change-me-base64-of-32-bytes", "DJANGO_DEBUG": "false"}],
    ids=["no configuration", "production without its secrets", "the example file's placeholder key"],
)
def test_audit_keygen_runs_before_any_configuration_exists(environment, tmp_path):
    """A new deployment makes its key first: manage.py audit_keygen needs no settings."""
    ran = subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "manage.py"), "audit_keygen"],
        cwd=tmp_path,  # no .env beside it either
        env={"PATH": os.environ["PATH"], **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    lines = dict(line.split("=", 1) for line in ran.stdout.split())
    seed, public = lines["AUDIT_SIGNING_KEY"], lines["AUDIT_VERIFY_KEYS"]
    assert signing.public_key_text(signing._private_key(seed).public_key()) == public
    assert "Keep AUDIT_SIGNING_KEY secret" in ran.stderr


def _legacy_hmac(secret: str, payload: dict) -> str:
    message = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_legacy_hmac_statements_fail_unless_checked_or_accepted_by_sequence(settings, chain, checkpoint_file):
    """Prune records signed before Ed25519 fail unless the old secret checks them or the
    operator accepts them, visibly, by sequence; legacy checkpoints are named and set aside."""
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 2")
    payload = {"through_sequence": 2, "through_hash": chain[1].hash}
    AuditAnchor.objects.create(
        username="old", events_pruned=2, older_than_days=1, signature=_legacy_hmac("old-secret", payload), **payload
    )
    legacy_checkpoint = {"sequence": 5, "hash": chain[-1].hash, "time": "2026-01-01T00:00:00+00:00"}
    legacy_checkpoint["signature"] = _legacy_hmac("old-secret", legacy_checkpoint)
    checkpoint_file.write_text(json.dumps(legacy_checkpoint) + "\n")

    assert verify() == (
        "ERROR FAILED at sequence 3: the prune record through sequence 2 is signed with the legacy HMAC scheme, so "
        "nothing vouches for that deletion (set AUDIT_LEGACY_HMAC_KEY to check an HMAC, or, having checked it "
        "another way, accept it with --accept-legacy-through 2)"
    )
    out, err = StringIO(), StringIO()
    call_command("verify_audit_log", "--accept-legacy-through", "2", stdout=out, stderr=err)
    assert out.getvalue().strip().endswith("unsigned prune records through sequence 2 accepted on your word")
    assert "ACCEPTED WITHOUT A SIGNATURE on the operator's word (--accept-legacy-through 2)" in err.getvalue()
    assert "1 legacy HMAC statement in the checkpoint file not checked and not used" in err.getvalue()
    assert verify("--accept-legacy-through", "3") == (
        "ERROR --accept-legacy-through 3 names no unsigned or unverifiable prune record (those there are end at "
        "sequence: 2); nothing was accepted"
    )

    settings.AUDIT_LEGACY_HMAC_KEY = "old-secret"
    assert (
        verify()
        == f"OK: 3 events and 1 review record verified; 1 checkpoint holds ({checkpoint_file}, latest at sequence 5)"
    )
    settings.AUDIT_LEGACY_HMAC_KEY = "another-secret"
    assert "signature is not valid" in verify()


# --- prune -------------------------------------------------------------------------


def prune(days: int = 365) -> str:
    out = StringIO()
    try:
        call_command("prune_audit_log", "--older-than-days", str(days), "--by", "ada.admin", stdout=out)
    except CommandError as exc:
        return f"ERROR {exc}"
    return out.getvalue().strip()


def test_prune_removes_old_events_signs_its_record_and_keeps_the_chain_verifiable(
    db, sales_user, checkpoint_file, django_capture_on_commit_callbacks
):
    backdated_chain(sales_user, old_count=6, total=10)
    assert verify() == "OK: 10 events verified"  # no checkpoint file yet
    with django_capture_on_commit_callbacks(execute=True):
        assert "Pruned 6 events through sequence 6" in prune()
    assert list(LookupEvent.objects.order_by("sequence").values_list("sequence", flat=True)) == [7, 8, 9, 10]
    anchor = AuditAnchor.objects.get()
    assert (anchor.username, anchor.through_sequence, anchor.events_pruned) == ("ada.admin", 6, 6)
    assert anchor.key_id == signing.key_id(signing.private_key().public_key())
    # The prune record and a checkpoint after it are kept outside the database.
    kept = statements(checkpoint_file)
    assert [(s["type"], s.get("through_sequence", s.get("sequence"))) for s in kept] == [
        ("prune", 6),
        ("checkpoint", 10),
    ]
    assert verify().startswith("OK: 4 events verified; 1 checkpoint")
    record(sales_user, 2143)
    assert verify().startswith("OK: 5 events verified")
    # The gate is shut again: nobody else can delete.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")


def test_prune_refuses_to_delete_a_tampered_log_and_deletes_nothing(db, sales_user, checkpoint_file):
    """Edit a row behind the portal's back, backdate it: a routine prune must not erase it."""
    backdated_chain(sales_user, old_count=6, total=10)
    tamper(f"UPDATE {TABLE} SET project_id = 4242 WHERE sequence = 3")
    answer = prune()
    assert answer == (
        "ERROR Nothing was pruned: the audit log does not verify. FAILED at sequence 3: its stored values do not "
        "match its hash (a row was edited)"
    )
    assert LookupEvent.objects.count() == 10 and not AuditAnchor.objects.exists()
    assert not checkpoint_file.exists()


def test_prune_refuses_when_the_log_was_cut_short_since_a_checkpoint(db, sales_user, checkpoint_file):
    backdated_chain(sales_user, old_count=6, total=10)
    checkpoints.take_checkpoint()
    tamper(f"DELETE FROM {TABLE} WHERE sequence = 10")
    assert prune().startswith("ERROR Nothing was pruned: the audit log does not verify. FAILED at sequence 10")
    assert LookupEvent.objects.count() == 9 and not AuditAnchor.objects.exists()


def test_a_prune_record_contradicting_a_checkpoint_fails_verification(settings, chain, checkpoint_file):
    """The checkpoint saw sequence 5 with one hash; a (validly signed) prune record claims
    another hash at 5. Before, the prune record was taken at its word."""
    checkpoints.take_checkpoint()
    tamper(f"DELETE FROM {TABLE}")
    anchor = AuditAnchor(
        created_at=timezone.now(), username="mallory", through_sequence=5, through_hash="e" * 64,
        events_pruned=5, older_than_days=1,
    )  # fmt: skip
    signed = signing.sign({k: v for k, v in checkpoints.prune_statement(anchor).items() if k != "signature"})
    anchor.key_id, anchor.signature = signed["key_id"], signed["signature"]
    anchor.save()
    assert verify("--checkpoints", "/dev/null").startswith("OK: 0 events")
    assert verify() == (
        "ERROR FAILED at sequence 5: the prune record at the checkpoint's sequence has a different hash "
        "(the log was rewritten)"
    )


def test_a_prune_record_signed_with_another_key_is_caught(settings, chain):
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 2")
    anchor = AuditAnchor(
        created_at=timezone.now(), username="mallory", through_sequence=2, through_hash=chain[1].hash,
        events_pruned=2, older_than_days=1,
    )  # fmt: skip
    real = settings.AUDIT_SIGNING_KEY
    settings.AUDIT_SIGNING_KEY = signing.new_key_pair()[0]
    signed = signing.sign({k: v for k, v in checkpoints.prune_statement(anchor).items() if k != "signature"})
    settings.AUDIT_SIGNING_KEY = real
    anchor.key_id, anchor.signature = signed["key_id"], signed["signature"]
    anchor.save()
    assert verify() == (
        "ERROR FAILED at sequence 3: the prune record's signature is not valid (forged or altered, or signed by a "
        "key not in AUDIT_VERIFY_KEYS)"
    )


def test_a_deleted_prune_record_is_caught_through_the_checkpoint_file(
    db, sales_user, checkpoint_file, django_capture_on_commit_callbacks
):
    backdated_chain(sales_user, old_count=6, total=10)
    with django_capture_on_commit_callbacks(execute=True):
        prune()
    # Deleting the prune record and the events after it: all that is left is an empty log.
    tamper(f"DELETE FROM {TABLE}")
    tamper(f"DELETE FROM {ANCHORS}", table=ANCHORS)
    assert verify("--checkpoints", "/dev/null").startswith("OK: 0 events")
    assert verify() == (
        "ERROR FAILED at sequence 6: the checkpoint file records a prune that is not in the database (deleted)"
    )


def test_prune_needs_a_retention(settings, db):
    settings.AUDIT_RETENTION_DAYS = None
    with pytest.raises(CommandError, match="Say how much history to keep"):
        call_command("prune_audit_log")
    settings.AUDIT_RETENTION_DAYS = 30
    out = StringIO()
    call_command("prune_audit_log", stdout=out)
    assert "Nothing older than 30 days." in out.getvalue()


def _append_at(user, at, *, project_id: int = 4242) -> LookupEvent:
    """A correctly chained row at the end of the log with a time of the writer's choosing,
    as anyone able to INSERT could write it with the project's own hashing code."""
    sequence, prev_hash = heads.head()
    event = LookupEvent(
        sequence=sequence + 1, created_at=at, user=user, username=user.username, project_id=project_id,
        outcome="found", channel="web", prev_hash=prev_hash,
    )  # fmt: skip
    event.hash = heads.hash_of(event)
    event.save(force_insert=True)
    return event


def test_a_row_stamped_2001_at_the_end_cannot_make_a_routine_prune_erase_todays_events(db, sales_user, checkpoint_file):
    backdated_chain(sales_user, old_count=6, total=10)
    _append_at(sales_user, datetime(2001, 1, 1, tzinfo=UTC))

    failed = verify()
    assert failed.startswith(
        "ERROR FAILED at sequence 11: its time (2001-01-01T00:00:00+00:00) is earlier than the event before it ("
    )
    assert failed.endswith(
        "by more than 2 s: times run backwards (a row's time was chosen, or the clock was stepped back)"
    )
    assert prune() == f"ERROR Nothing was pruned: the audit log does not verify. {failed.removeprefix('ERROR ')}"
    assert LookupEvent.objects.count() == 11 and not AuditAnchor.objects.exists()


def test_prune_refuses_when_an_event_newer_than_the_cutoff_comes_before_an_older_one(db, sales_user, checkpoint_file):
    """Within the verifier's tolerance, but across the cutoff: the newer event would have gone."""
    cutoff = timezone.now() - timedelta(days=365)
    backdated_chain(sales_user, old_count=4, total=4)
    _append_at(sales_user, cutoff + timedelta(seconds=1), project_id=5)
    _append_at(sales_user, cutoff - timedelta(milliseconds=500), project_id=6)
    _append_at(sales_user, timezone.now(), project_id=7)
    assert verify().startswith("OK: 7 events")

    answer = prune()
    assert answer.startswith("ERROR Nothing was pruned: event 5 (")
    assert "is not older than the cutoff" in answer and "but comes before event 6 (" in answer
    assert answer.endswith("times run backwards across the cutoff.")
    assert LookupEvent.objects.count() == 7 and not AuditAnchor.objects.exists()


def test_prune_stops_at_the_first_event_at_or_after_the_cutoff(db, sales_user, checkpoint_file):
    backdated_chain(sales_user, old_count=6, total=10)
    assert "Pruned 6 events through sequence 6" in prune()
    assert list(LookupEvent.objects.values_list("sequence", flat=True).order_by("sequence")) == [7, 8, 9, 10]


def test_a_review_record_earlier_than_the_one_before_it_fails_verification(chain, admin_user_role):
    sequence, prev_hash = heads.review_head()
    review = HistoryReview(
        sequence=sequence + 1, prev_hash=prev_hash, created_at=timezone.now() - timedelta(days=3),
        user=admin_user_role, username=admin_user_role.username, kind=HistoryReview.Kind.VIEW, detail={}, rows=0,
    )  # fmt: skip
    review.hash = heads.review_hash_of(review)
    review.save(force_insert=True)
    assert verify().startswith("ERROR FAILED at review record 2: its time (")


def test_a_clock_step_back_within_two_seconds_still_verifies(db, sales_user):
    record(sales_user, 2143)
    _append_at(sales_user, timezone.now() - timedelta(milliseconds=1500))
    assert verify() == "OK: 2 events verified"


def _unsigned_prune_hiding(events: list[LookupEvent], through: int) -> None:
    """What someone with the owner's rights can do: delete the first events and write a
    prune record that links to the rest, with no key and no signature."""
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= %s", [through])
    AuditAnchor.objects.create(
        username="prune_audit_log", through_sequence=through, through_hash=events[through - 1].hash,
        events_pruned=through, older_than_days=365, key_id="", signature="",
    )  # fmt: skip


def test_an_unsigned_prune_record_hiding_deleted_events_fails_verification(chain, checkpoint_file):
    _unsigned_prune_hiding(chain, 2)

    assert verify() == (
        "ERROR FAILED at sequence 3: the prune record through sequence 2 is not signed, so nothing vouches for that "
        "deletion (set AUDIT_LEGACY_HMAC_KEY to check an HMAC, or, having checked it another way, accept it with "
        "--accept-legacy-through 2)"
    )
    # Nor does a prune go ahead over it.
    assert prune().startswith("ERROR Nothing was pruned: the audit log does not verify. FAILED at sequence 3:")


def test_an_unsigned_prune_record_fails_even_with_the_legacy_key_set(settings, chain):
    _unsigned_prune_hiding(chain, 2)
    settings.AUDIT_LEGACY_HMAC_KEY = "old-secret"
    assert verify().startswith("ERROR FAILED at sequence 3: the prune record's signature is not valid")


def test_an_operator_accepts_an_unsigned_prune_record_by_its_sequence_and_the_answer_says_so(
    chain, sales_user, checkpoint_file
):
    _unsigned_prune_hiding(chain, 2)
    assert verify("--accept-legacy-through", "2").startswith("OK: 3 events and 1 review record verified")
    # Accepting one record does not wave through a later one.
    tamper(f"DELETE FROM {TABLE} WHERE sequence <= 4")
    AuditAnchor.objects.create(
        username="x", through_sequence=4, through_hash=chain[3].hash, events_pruned=2, older_than_days=1
    )
    assert verify("--accept-legacy-through", "2").startswith(
        "ERROR FAILED at sequence 5: the prune record through sequence 4 is not signed"
    )


@pytest.mark.parametrize("given", ["abc", "0", "-1", "1.5", "99999999999999999999", ""])
def test_verify_refuses_a_sequence_that_is_not_one(chain, given):
    answer = verify("--accept-legacy-through", given)
    assert answer.startswith("ERROR Error: argument --accept-legacy-through:")
    assert "is not a sequence: give a whole number such as 1200" in answer


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--accept-legacy-through", "abc"], "argument --accept-legacy-through: 'abc' is not a sequence"),
        (
            ["--older-than-days", "365", "--accept-legacy-through", "3"],
            "--accept-legacy-through 3 names no unsigned or unverifiable prune record",
        ),
        (["--older-than-days", "999999"], "--older-than-days must be from 1 to 36500; nothing was pruned."),
        (["--older-than-days", "0"], "--older-than-days must be from 1 to 36500; nothing was pruned."),
        (["--older-than-days", "ten"], "argument --older-than-days: invalid int value: 'ten'"),
    ],
)
def test_prune_refuses_bad_options_clearly_and_deletes_nothing(db, sales_user, checkpoint_file, options, message):
    backdated_chain(sales_user, old_count=6, total=10)
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("prune_audit_log", *options, stdout=StringIO())
    assert LookupEvent.objects.count() == 10 and not AuditAnchor.objects.exists()


# --- automatic checkpoints ---------------------------------------------------------------


def test_it_takes_a_checkpoint_every_n_events(
    settings, db, sales_user, checkpoint_file, django_capture_on_commit_callbacks
):
    settings.AUDIT_CHECKPOINT_EVERY = 3
    events = []
    for n in range(7):
        with django_capture_on_commit_callbacks(execute=True):  # each lookup commits on its own
            events.append(record(sales_user, 2143 + n))
    kept = statements(checkpoint_file)
    assert [(s["sequence"], s["hash"]) for s in kept] == [(3, events[2].hash), (6, events[5].hash)]
    assert verify() == f"OK: 7 events verified; 2 checkpoints hold ({checkpoint_file}, latest at sequence 6)"


def test_it_takes_a_checkpoint_on_the_first_write_after_m_minutes(
    settings, db, sales_user, checkpoint_file, django_capture_on_commit_callbacks, monkeypatch
):
    settings.AUDIT_CHECKPOINT_EVERY = 0
    settings.AUDIT_CHECKPOINT_MINUTES = 15
    monkeypatch.setattr(checkpoints, "_last_checkpoint", time.monotonic() - 14 * 60)
    with django_capture_on_commit_callbacks(execute=True):
        record(sales_user, 2143)
    assert not checkpoint_file.exists()
    monkeypatch.setattr(checkpoints, "_last_checkpoint", time.monotonic() - 15 * 60)
    with django_capture_on_commit_callbacks(execute=True):
        record(sales_user, 2144)
    with django_capture_on_commit_callbacks(execute=True):
        record(sales_user, 2145)  # the clock starts again at the checkpoint
    assert [s["sequence"] for s in statements(checkpoint_file)] == [2]


def test_a_lookup_stands_when_the_checkpoint_file_cannot_be_written(
    settings, db, sales_user, tmp_path, django_capture_on_commit_callbacks, caplog
):
    settings.AUDIT_CHECKPOINT_EVERY = 1
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "missing-dir" / "checkpoints.jsonl")
    with django_capture_on_commit_callbacks(execute=True):
        record(sales_user, 2143)
    assert LookupEvent.objects.count() == 1
    assert "Automatic audit checkpoint failed" in caplog.text
