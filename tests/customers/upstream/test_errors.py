"""customers/upstream/errors.py: every answer that is not a customer, what it is audited as,
and what staff are told (never upstream's own words)."""

import pytest

from customers.outcomes import Outcome
from customers.upstream import errors

TABLE = [
    ("INVALID_API_KEY", errors.InvalidApiKey, Outcome.API_KEY_INVALID, ""),
    ("API_KEY_INVALID", errors.InvalidApiKey, Outcome.API_KEY_INVALID, ""),
    ("INVALID_PARAMETERS", errors.InvalidParameters, Outcome.INVALID_PARAMETERS, ""),
    ("PROJECT_NOT_FOUND", errors.ProjectNotFound, Outcome.PROJECT_NOT_FOUND, "Check the number and try again."),
    ("NOT_FOUND", errors.ProjectNotFound, Outcome.PROJECT_NOT_FOUND, "Check the number and try again."),
    ("NO_CUSTOMER_ASSIGNED", errors.NoCustomerAssigned, Outcome.NO_CUSTOMER, ""),
    ("UNAUTHORISED", errors.NotAuthorised, Outcome.UPSTREAM_NOT_AUTHORISED, ""),
    ("UNAUTHORIZED", errors.NotAuthorised, Outcome.UPSTREAM_NOT_AUTHORISED, ""),
    ("UNKNOWN", errors.UpstreamError, Outcome.UPSTREAM_ERROR, "Try again in a minute."),
]


@pytest.mark.parametrize(("code", "error", "outcome", "advice"), TABLE, ids=[row[0] for row in TABLE])
def test_each_error_code_has_its_class_outcome_and_advice(code, error, outcome, advice):
    assert errors.ERROR_CODES[code] is error
    raised = error("code " + code)
    assert raised.outcome == outcome
    assert str(raised) == raised.advice == advice
    assert raised.detail == "code " + code
    assert isinstance(raised, errors.SolarProofError)


def test_the_table_holds_the_contracts_codes_and_no_others():
    assert sorted(errors.ERROR_CODES) == sorted(row[0] for row in TABLE)


@pytest.mark.parametrize(
    ("error", "outcome", "advice"),
    [
        (errors.SolarProofError, Outcome.UPSTREAM_ERROR, "Try again in a minute."),
        (errors.UpstreamError, Outcome.UPSTREAM_ERROR, "Try again in a minute."),
        (
            errors.UpstreamUnavailable,
            Outcome.UPSTREAM_UNAVAILABLE,
            "The portal could not reach it. Try again in a minute.",
        ),
        (errors.UpstreamTimedOut, Outcome.UPSTREAM_UNAVAILABLE, "It did not answer in time. Try again in a minute."),
        (
            errors.UpstreamSaysUnavailable,
            Outcome.UPSTREAM_UNAVAILABLE,
            "It answered that it cannot serve requests for now. Try again in a minute.",
        ),
    ],
)
def test_failures_without_a_code_say_what_happened_and_to_try_again(error, outcome, advice):
    raised = error()
    assert (raised.outcome, str(raised), raised.detail) == (outcome, advice, "")
