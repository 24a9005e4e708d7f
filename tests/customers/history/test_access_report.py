"""The customer access report: the page an admin prints, the signed report.json and the
auditor's check of it (verify_access_report), as an admin and an auditor would see them."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from customers.audit import signing
from customers.history import access_report
from customers.models import HistoryReview
from tests.support.audit import record

ROOT = Path(__file__).resolve().parents[3]
CUSTOMER = 5001
OTHER_CUSTOMER = 5002


@pytest.fixture
def admin_client(client, admin_user_role):
    client.force_login(admin_user_role)
    return client


@pytest.fixture
def lookups(sales_user, installer_user, admin_user_role):
    """Customer 5001 has two projects (2143 and 2150), seen by two members of staff over
    web and the command line; 2143 was also not found once and rate limited once; project
    2144 belongs to another customer, and so does a later lookup of 2150."""
    return [
        record(sales_user, 2143, customer_id=CUSTOMER, request_id="req-a", reason="Customer called"),
        record(sales_user, 2144, customer_id=OTHER_CUSTOMER, request_id="req-b"),
        record(installer_user, 2150, customer_id=CUSTOMER, request_id="req-c"),
        _record(sales_user, 2143, "project_not_found", request_id="req-d"),
        _record(installer_user, 2150, "rate_limited", request_id="req-e"),
        _record(admin_user_role, 2143, "found", customer_id=CUSTOMER, channel="cli", request_id="req-f"),
        _record(sales_user, 2150, "found", customer_id=OTHER_CUSTOMER, request_id="req-g"),
    ]


def _record(user, project_id, outcome, **fields):
    from customers.audit import log as audit_log

    fields.setdefault("channel", "web")
    return audit_log.record_lookup(user=user, project_id=project_id, outcome=outcome, **fields)


def _statement(admin_client, url: str = f"/history/customers/{CUSTOMER}/report.json") -> dict:
    response = admin_client.get(url)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content)


def _verify(statement: dict, tmp_path: Path) -> tuple[bool, str]:
    """verify_access_report in this process, as an auditor reads its answer."""
    path = tmp_path / "report.json"
    path.write_text(json.dumps(statement))
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_access_report", str(path), stdout=out, stderr=err)
    except CommandError as exc:
        return False, f"{err.getvalue()}{exc}"
    return True, out.getvalue()


# --- the page ------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_lists_every_lookup_that_showed_the_customer_across_their_projects(admin_client, lookups, settings):
    settings.COMPANY_NAME = "Sunny Coast Solar Pty Ltd"
    response = admin_client.get(f"/history/customers/{CUSTOMER}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Sunny Coast Solar Pty Ltd" in page
    assert "Who has seen the details of customer 5001" in page
    assert "2143, 2150" in page
    report = access_report.access_report_build(customer_id=CUSTOMER)
    assert [event.request_id for event in report.shown] == ["req-a", "req-c", "req-f"]
    assert [event.request_id for event in report.not_shown] == ["req-d", "req-e"]
    assert [(person.username, person.lookups) for person in report.staff] == [
        ("ada.admin", 1),
        ("ivy.installer", 1),
        ("sam.sales", 1),
    ]
    assert report.first_access == lookups[0].created_at
    assert report.last_access == lookups[5].created_at
    # Who, as what: the role each had when they looked.
    for who in ("sam.sales (Sales)", "ivy.installer (Installers)", "ada.admin (Admins)"):
        assert who in " ".join(page.replace('<span class="role">', "").replace("</span>", "").split())
    for shown in ("req-a", "req-c", "req-f", "Customer called", "cli", "req-d", "req-e"):
        assert shown in page
    # Nothing of the other customer: not their ID, nor the lookups that showed them.
    # As a number of its own: a hash or a key printed on the page may hold these digits.
    assert not re.search(rf"\b{OTHER_CUSTOMER}\b", page)
    assert "req-b" not in page and "req-g" not in page
    assert "2144" not in page


@pytest.mark.django_db
def test_it_puts_making_the_report_on_the_record_with_the_customer_and_row_count(admin_client, lookups):
    admin_client.get(f"/history/customers/{CUSTOMER}/")
    _statement(admin_client)

    reviews = list(HistoryReview.objects.filter(kind="access_report").order_by("sequence"))
    said = [(review.username, review.detail["customer_id"], review.detail["form"], review.rows) for review in reviews]
    assert said == [
        ("ada.admin", CUSTOMER, "page", 5),
        ("ada.admin", CUSTOMER, "json", 5),
    ]
    assert reviews[0].get_kind_display() == "Made a customer access report"


@pytest.mark.django_db
def test_it_resolves_a_project_to_the_customer_the_log_recorded(admin_client, lookups):
    response = admin_client.get("/history/customers/", {"project": "#2143"})
    assert response.status_code == 302
    assert response["Location"] == f"/history/customers/{CUSTOMER}/?project=2143"

    page = admin_client.get(response["Location"])
    assert "asked for by project 2143" in page.content.decode()
    assert admin_client.get("/history/customers/", {"customer": " 5001 "})["Location"] == "/history/customers/5001/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/history/customers/?customer=abc", 400, "A customer ID is a whole number such as 2143, not “abc”."),
        ("/history/customers/?project=-1", 400, "A project ID is a whole number such as 2143, not “-1”."),
        ("/history/customers/?customer=1&project=2", 400, "Enter a customer ID or a project ID, not both."),
        ("/history/customers/?project=7777", 400, "Project 7777 has never been looked up"),
        ("/history/customers/?project=2151", 400, "No lookup of project 2151 showed a customer"),
        ("/history/customers/abc/", 404, "A customer ID is a whole number such as 2143, not “abc”."),
        ("/history/customers/99999999999999999999999/", 404, "A customer ID is a whole number"),
        ("/history/customers/" + "9" * 5000 + "/", 404, "A customer ID is a whole number"),
        ("/history/customers/?project=" + "9" * 5000, 400, "A project ID is a whole number"),
        ("/history/customers/0/", 404, "A customer ID is a whole number"),
        ("/history/customers/6001/", 404, "No lookup in the log showed customer 6001: there is nothing to report."),
        ("/history/customers/5001/?project=2144", 404, "The log does not record project 2144 for customer 5001."),
        ("/history/customers/6001/report.json", 404, "No lookup in the log showed customer 6001"),
        ("/history/customers/x1/report.json", 404, "A customer ID is a whole number"),
    ],
)
def test_it_answers_bad_input_with_a_clear_message_and_writes_no_review(
    admin_client, lookups, sales_user, url, status, message
):
    _record(sales_user, 2151, "project_not_found")
    response = admin_client.get(url)

    assert response.status_code == status
    assert message in response.content.decode()
    assert not HistoryReview.objects.filter(kind="access_report").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/history/customers/", "/history/customers/5001/", "/history/customers/5001/report.json"]
)
def test_it_shows_staff_without_the_admins_role_nothing(client, installer_user, lookups, url):
    client.force_login(installer_user)
    response = client.get(url)

    assert response.status_code == 403
    assert "req-a" not in response.content.decode()
    assert not HistoryReview.objects.filter(kind="access_report").exists()


@pytest.mark.django_db
def test_it_flags_a_lookup_outside_business_hours_in_the_summary(admin_client, lookups, settings):
    from datetime import time

    settings.AUDIT_BUSINESS_HOURS = (time(0, 0), time(0, 1))  # every lookup is outside them
    page = admin_client.get(f"/history/customers/{CUSTOMER}/").content.decode()

    assert "3 lookups flagged" in page
    assert "outside business hours (00:00–00:01)" in page


@pytest.mark.django_db
def test_it_flags_a_lookup_in_an_hour_when_its_user_looked_up_too_many_projects(admin_client, lookups, settings):
    from datetime import time

    settings.AUDIT_ALERT_DISTINCT_PROJECTS_PER_HOUR = 2  # sam.sales saw 2143, 2144 and 2150 this hour
    settings.AUDIT_BUSINESS_HOURS = (time.min, time.max)  # whenever the test runs, within hours
    page = admin_client.get(f"/history/customers/{CUSTOMER}/").content.decode()

    report = access_report.access_report_build(customer_id=CUSTOMER)
    flagged = {event.request_id: reasons for event, reasons in report.flagged()}
    assert flagged == {"req-a": ["its user looked up 3 different projects that hour (alert above 2)"]}
    assert "1 lookup flagged" in page
    assert f"#{lookups[0].sequence}, sam.sales" in page


# --- the signed statement and its check --------------------------------------------------


@pytest.mark.django_db
def test_a_fresh_statement_verifies_and_holds_each_rows_audit_fields_and_chain_hash(admin_client, lookups, tmp_path):
    statement = _statement(admin_client)

    assert [row["request_id"] for row in statement["rows"]] == ["req-a", "req-c", "req-d", "req-e", "req-f"]
    first = statement["rows"][0]
    assert (first["sequence"], first["hash"], first["prev_hash"]) == (
        lookups[0].sequence,
        lookups[0].hash,
        lookups[0].prev_hash,
    )
    assert first["username"] == "sam.sales" and first["reason"] == "Customer called"
    assert statement["checkpoint"]["sequence"] >= lookups[-1].sequence
    assert statement["covers"]["to_sequence"] == statement["checkpoint"]["sequence"]
    assert statement["row_count"] == 5 and statement["projects"] == [2143, 2150]
    assert not re.search(rf"\b{OTHER_CUSTOMER}\b", json.dumps(statement))  # not inside a hash: a value
    ok, said = _verify(statement, tmp_path)
    assert ok, said
    assert said.startswith(f"OK: customer {CUSTOMER}, 5 rows verified")


EDITS = {
    "sequence": 999,
    "created_at": "2001-01-01T00:00:00.000000+00:00",
    "user_id": 424242,
    "username": "nobody",
    "project_id": 2143,
    "outcome": "upstream_error",
    "customer_id": None,
    "channel": "cli",
    "ip": "203.0.113.9",
    "user_agent": "edited",
    "request_id": "req-edited",
    "duration_ms": 1,
    "cache_hit": True,
    "auth_method": "oidc",
    "reason": "edited reason",
    "role": "Admins",
    "prev_hash": "0" * 64,
    "hash": "f" * 64,
    "line": 9,
    "row_signature": base64.b64encode(b"x" * 64).decode(),
}


@pytest.mark.django_db
@pytest.mark.parametrize("field", list(EDITS))
def test_an_edit_to_any_field_of_a_row_fails_naming_its_line(admin_client, lookups, tmp_path, field):
    statement = _statement(admin_client)
    tampered = copy.deepcopy(statement)
    row = tampered["rows"][1]
    assert row[field] != EDITS[field]
    row[field] = EDITS[field]

    ok, said = _verify(tampered, tmp_path)

    assert not ok
    line = "line 2" if field != "line" else "line 9"
    assert f"FAILED {line} (sequence {row['sequence']})" in said
    assert "does not verify" in said


@pytest.mark.django_db
def test_an_edit_that_recomputes_the_chain_hash_still_fails_on_the_rows_signature(admin_client, lookups, tmp_path):
    from customers.audit import chain

    tampered = _statement(admin_client)
    row = tampered["rows"][0]
    row["username"] = "someone.else"
    row["hash"] = chain.lookup_hash(row)

    ok, said = _verify(tampered, tmp_path)

    assert not ok
    assert f"FAILED line 1 (sequence {row['sequence']}): its signature does not hold for this line" in said


@pytest.mark.django_db
def test_a_dropped_row_fails_naming_the_missing_line(admin_client, lookups, tmp_path):
    tampered = _statement(admin_client)
    dropped = tampered["rows"].pop(2)

    ok, said = _verify(tampered, tmp_path)

    assert not ok
    assert "line 3 is missing (dropped)" in said
    assert "it says 5 rows and holds 4" in said
    assert dropped["request_id"] not in said  # named by its line, not shown again


@pytest.mark.django_db
def test_a_reordered_row_fails_naming_the_lines(admin_client, lookups, tmp_path):
    tampered = _statement(admin_client)
    rows = tampered["rows"]
    rows[1], rows[2] = rows[2], rows[1]

    ok, said = _verify(tampered, tmp_path)

    assert not ok
    assert f"FAILED line 3 (sequence {rows[1]['sequence']}): it is at position 2" in said
    assert "out of order (reordered)" in said


@pytest.mark.django_db
def test_a_statement_signed_by_an_unknown_key_fails(admin_client, lookups, tmp_path, settings):
    genuine_public = signing.public_key_text(signing.private_key().public_key())
    settings.AUDIT_SIGNING_KEY = signing.new_key_pair()[0]  # mallory's portal
    forged = _statement(admin_client)
    settings.AUDIT_VERIFY_KEYS = [genuine_public]

    ok, said = _verify(forged, tmp_path)

    assert not ok
    assert f"signed with key '{forged['key_id']}', which is not one of AUDIT_VERIFY_KEYS" in said


@pytest.mark.django_db
def test_an_edited_header_or_checkpoint_fails(admin_client, lookups, tmp_path):
    statement = _statement(admin_client)
    other = copy.deepcopy(statement)
    other["customer_id"] = OTHER_CUSTOMER
    ok, said = _verify(other, tmp_path)
    assert not ok and "the statement: its signature does not hold" in said

    moved = copy.deepcopy(statement)
    moved["checkpoint"]["sequence"] = 1
    ok, said = _verify(moved, tmp_path)
    assert not ok and "the checkpoint: its signature does not hold" in said


@pytest.mark.django_db
def test_it_refuses_a_file_that_is_not_a_statement_plainly(tmp_path):
    cases = {"not-json.json": "{", "other.json": json.dumps({"type": "checkpoint"})}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(CommandError, match="is not a customer access report"):
            call_command("verify_access_report", str(tmp_path / name), stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("verify_access_report", str(tmp_path / "absent.json"), stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError) as refused:
        call_command("verify_access_report", str(tmp_path / "other.json"), stdout=StringIO(), stderr=StringIO())
    assert str(refused.value).endswith("other.json is not a customer access report: its type is not access_report")


@pytest.mark.django_db
def test_a_field_written_twice_is_refused_so_what_verifies_is_what_a_reader_sees(admin_client, lookups, tmp_path):
    """json.loads keeps the last of a repeated name (the signed one); a person or another
    tool reading the file may take the first: an edit put before the real value."""
    statement = _statement(admin_client)
    assert _verify(statement, tmp_path)[0]
    text = json.dumps(statement, indent=1)
    forged = text.replace('"username": "sam.sales"', '"username": "nobody", "username": "sam.sales"', 1)
    assert forged != text
    path = tmp_path / "forged.json"
    path.write_text(forged)
    with pytest.raises(CommandError, match="is not a customer access report: it names 'username' more than once"):
        call_command("verify_access_report", str(path), stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"type": "access_report", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"type": "access_report", "version": ' + "9" * 5000 + "}", "not JSON that can be read"),
    ],
    ids=["deeply-nested", "huge-number"],
)
def test_a_file_that_json_cannot_hold_is_refused_plainly_not_with_a_traceback(tmp_path, text, said):
    path = tmp_path / "report.json"
    path.write_text(text)
    with pytest.raises(CommandError, match=f"is not a customer access report: it is {said}"):
        call_command("verify_access_report", str(path), stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
def test_a_checkpoint_file_that_cannot_be_written_is_said_plainly_and_no_report_is_made(
    admin_client, lookups, settings, tmp_path, caplog
):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "unmounted" / "checkpoints.jsonl")
    admin_client.raise_request_exception = False

    response = admin_client.get(f"/history/customers/{CUSTOMER}/report.json")

    assert response.status_code == 503 and response["Content-Type"].startswith("application/json")
    assert "checkpoint could not be written" in response.json()["error"]
    assert "Content-Disposition" not in response
    assert not HistoryReview.objects.filter(kind="access_report").exists()
    assert "Access report not made: its checkpoint could not be written (FileNotFoundError)" in caplog.text


def _auditor(path: Path, keys: str) -> subprocess.CompletedProcess:
    """manage.py on an auditor's machine: the public keys and nothing else of the portal."""
    environment = {"PATH": os.environ["PATH"], "AUDIT_VERIFY_KEYS": keys, "HOME": str(path.parent)}
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, str(ROOT / "manage.py"), "verify_access_report", str(path)],
        cwd=path.parent, env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.django_db
def test_an_auditor_checks_the_statement_with_the_public_key_alone(admin_client, lookups, tmp_path):
    statement = _statement(admin_client)
    public = signing.public_key_text(signing.private_key().public_key())
    path = tmp_path / "report.json"
    path.write_text(json.dumps(statement))

    verified = _auditor(path, public)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"OK: customer {CUSTOMER}, 5 rows verified")

    statement["rows"][0]["reason"] = "Routine check"
    path.write_text(json.dumps(statement))
    failed = _auditor(path, public)
    assert failed.returncode != 0
    assert f"FAILED line 1 (sequence {statement['rows'][0]['sequence']}): its fields do not match" in failed.stderr

    # A development key (derived from a published secret) is never trusted on its own.
    unconfigured = _auditor(path, "")
    assert unconfigured.returncode != 0
    assert "which is not one of AUDIT_VERIFY_KEYS (none set)" in unconfigured.stderr


@pytest.mark.django_db
def test_the_page_prints_the_key_the_auditor_checks_the_statement_with(admin_client, lookups, tmp_path, settings):
    page = admin_client.get(f"/history/customers/{CUSTOMER}/").content.decode()
    printed = re.search(r'<code class="public-key">([^<]+)</code> \(key ID ([0-9a-f]{16})\)', page)
    assert printed, "the report names the public key its statement is signed with"
    path = tmp_path / "report.json"
    path.write_text(json.dumps(_statement(admin_client)))

    verified = _auditor(path, printed.group(1))
    assert verified.returncode == 0, verified.stderr
    assert json.loads(path.read_text())["key_id"] == printed.group(2)
    assert settings.AUDIT_SIGNING_KEY not in page  # the private half never


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("/history/customers/?project=2143", "customer access report"),
        (f"/history/customers/{CUSTOMER}/", f"access report for customer {CUSTOMER}"),
        (f"/history/customers/{CUSTOMER}/report.json", f"signed access report for customer {CUSTOMER}"),
    ],
    ids=["form", "page", "statement"],
)
def test_another_sites_link_cannot_make_a_report_through_an_admins_browser(admin_client, lookups, url, what):
    response = admin_client.get(url, HTTP_SEC_FETCH_SITE="cross-site")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert f"the {what} has not been opened yet" in " ".join(page.split())
    assert "req-a" not in page and "Content-Disposition" not in response
    assert not HistoryReview.objects.filter(kind="access_report").exists()

    same_site = admin_client.get(url, HTTP_SEC_FETCH_SITE="same-origin")
    assert same_site.status_code in (200, 302)


@pytest.mark.django_db
def test_a_lookup_from_before_roles_were_recorded_says_so_and_still_verifies(admin_client, sales_user, tmp_path):
    from customers.audit import log as audit_log

    old = audit_log.append(
        user=sales_user, username="sam.sales", project_id=2143, outcome="found", channel="web",
        customer_id=CUSTOMER, request_id="req-old", role=None,
    )  # fmt: skip
    assert old.role is None

    page = " ".join(admin_client.get(f"/history/customers/{CUSTOMER}/").content.decode().split())
    assert 'sam.sales <span class="role">(role not recorded)</span>' in page
    statement = _statement(admin_client)
    assert statement["rows"][0]["role"] is None
    ok, said = _verify(statement, tmp_path)
    assert ok, said
