"""What a RATE_LIMITED refusal says: the request's cost against what the caller has, as its
throttleStatus shows it, and a retry time only when the budget refills."""

from __future__ import annotations

from gateway.edge.budget import BudgetPolicy, BudgetState
from gateway.edge.pipeline import _rate_limited

POLICY = BudgetPolicy("client:p", 200, 50.0)


def test_the_message_names_the_cost_and_what_is_left() -> None:
    error = _rate_limited(BudgetState(False, 35.7, 2.7312, POLICY), 172)
    assert error.code == "RATE_LIMITED"
    assert error.message == (
        "The cost budget is short: this request costs 172, 35 of 200 are available now; retry in 2.732 s"
    )
    assert error.extensions["retryAfterSeconds"] == 2.732


def test_a_budget_below_zero_reads_as_throttle_status_shows_it() -> None:
    state = BudgetState(False, -3.2, 3.5, POLICY)
    error = _rate_limited(state, 172)
    assert state.throttle_status()["currentlyAvailable"] == -4
    assert error.message == (
        "The cost budget is short: this request costs 172, -4 of 200 are available now; retry in 3.5 s"
    )


def test_a_budget_that_does_not_refill_names_no_time() -> None:
    error = _rate_limited(BudgetState(False, 3.0, -1.0, BudgetPolicy("ip:x", 20, 0.0)), 5)
    assert error.message.endswith("3 of 20 are available now; this budget does not refill")
    assert "retryAfterSeconds" not in error.extensions
