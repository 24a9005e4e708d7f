"""The audit event stream: one JSON line per lookup event, review record, checkpoint and
prune on the solarproof_portal.audit logger, for a log shipper to keep off the box."""

import json
import logging
from collections.abc import Iterator

import pytest

from customers.audit import checkpoints, heads
from customers.audit import log as audit_log
from customers.audit.log import record_review
from customers.lookups import look_up_customer
from customers.models import HistoryReview, LookupEvent
from tests.support.audit import verify


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def stream() -> Iterator[list[str]]:
    handler = _Lines()
    handler.setFormatter(logging.Formatter("%(message)s"))  # as settings.LOGGING's audit handler
    logger = logging.getLogger("solarproof_portal.audit")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def test_every_record_is_one_json_line_with_the_csv_fields_and_the_hash(
    settings, db, sales_user, admin_user_role, stream, django_capture_on_commit_callbacks
):
    settings.LOOKUP_REASON = "optional"
    with django_capture_on_commit_callbacks(execute=True):
        result = look_up_customer(
            user=sales_user, project_id=2143, ip="10.1.2.3", request_id="req-7", reason="Customer called"
        )
    with django_capture_on_commit_callbacks(execute=True):
        record_review(user=admin_user_role, kind=HistoryReview.Kind.EXPORT, detail={"project": 2143}, rows=1)
    statement = checkpoints.take_checkpoint()

    lookup, review, checkpoint = (json.loads(line) for line in stream)
    event = result.event
    assert lookup == {
        "log": "solarproof_portal.audit",
        "record": "lookup",
        "sequence": 1,
        "time": lookup["time"],
        "username": "sam.sales",
        "project_id": 2143,
        "outcome": "found",
        "customer_id": 79298,
        "channel": "web",
        "ip": "10.1.2.3",
        "request_id": "req-7",
        "duration_ms": event.duration_ms,
        "auth_method": None,
        "reason": "Customer called",
        "hash": event.hash,
        "prev_hash": heads.GENESIS,
    }
    assert lookup["time"].endswith("+10:00") and lookup["hash"] == LookupEvent.objects.get().hash
    assert (review["record"], review["kind"], review["detail"], review["sequence"]) == (
        "review", "export", {"project": 2143}, 1
    )  # fmt: skip
    assert review["hash"] == HistoryReview.objects.get().hash
    assert checkpoint == {"log": "solarproof_portal.audit", "record": "checkpoint", **{
        k: v for k, v in statement.items() if k != "type"
    }}  # fmt: skip
    # Nothing about the customer beyond what the audit row holds.
    for detail in ("Judy", "Matherson", "0411", "61411549054", "judymatherson", "Mono Drive"):
        assert all(detail not in line for line in stream)


def test_a_lookup_whose_row_rolls_back_is_not_streamed(db, sales_user, stream, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        audit_log.record_lookup(user=sales_user, project_id=2143, outcome="found", channel="web")
        raise RuntimeError("the surrounding work failed")
    assert stream == [] and not LookupEvent.objects.exists()


def test_the_stream_copy_of_a_lookup_can_be_checked_against_the_table(
    db, sales_user, stream, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for project_id in (2143, 2144):
            look_up_customer(user=sales_user, project_id=project_id)
    shipped = [json.loads(line) for line in stream]
    assert [line["prev_hash"] for line in shipped[1:]] == [line["hash"] for line in shipped[:-1]]
    assert verify() == "OK: 2 events verified"
