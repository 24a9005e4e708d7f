"""solarproof_portal/budget.py: SOLARPROOF_TIMEOUT, read the same way by Django and by
gunicorn's master, and the worker timeout that follows from it."""

import pytest

from solarproof_portal.budget import DEFAULT_SOLARPROOF_TIMEOUT, solarproof_timeout, worker_timeout


def test_unset_or_blank_means_the_default_of_eight_seconds():
    assert DEFAULT_SOLARPROOF_TIMEOUT == 8.0
    assert solarproof_timeout({}) == solarproof_timeout({"SOLARPROOF_TIMEOUT": "  "}) == 8.0


@pytest.mark.parametrize(("raw", "seconds"), [("2.5", 2.5), (" 0.01 ", 0.01), ("30", 30.0), ("1e1", 10.0)])
def test_it_reads_seconds(raw, seconds):
    assert solarproof_timeout({"SOLARPROOF_TIMEOUT": raw}) == seconds


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", "SOLARPROOF_TIMEOUT must be greater than zero."),
        ("-0.5", "SOLARPROOF_TIMEOUT must be greater than zero."),
        ("inf", "SOLARPROOF_TIMEOUT must be greater than zero."),
        ("nan", "SOLARPROOF_TIMEOUT must be greater than zero."),
        ("8s", "SOLARPROOF_TIMEOUT must be a number of seconds."),
    ],
)
def test_it_refuses_what_is_not_a_time_budget_naming_the_variable(raw, message):
    with pytest.raises(ValueError) as refused:
        solarproof_timeout({"SOLARPROOF_TIMEOUT": raw})
    assert str(refused.value) == message
    assert refused.value.__context__ is None or refused.value.__suppress_context__  # one line at start-up


@pytest.mark.parametrize(("budget", "worker"), [(8.0, 15), (0.5, 8), (2.01, 10), (30.0, 37)])
def test_a_worker_outlives_a_lookup_that_keeps_its_budget_by_seven_seconds(budget, worker):
    """Rounded up, so the worker never times out a lookup still inside its budget."""
    assert worker_timeout(budget) == worker
