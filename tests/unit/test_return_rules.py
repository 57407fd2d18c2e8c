"""Returns: the table, what may come back, what is received, what is refunded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.errors import IllegalTransition
from shopkeeper.returns.rules import (
    REASONS,
    InvalidReturnLines,
    InvalidReturnReason,
    LineReturnable,
    NothingReceived,
    QuantityExceedsReturnable,
    ReceivedExceedsRequested,
    ReceivedLine,
    ReturnLineRequest,
    plan_receipt,
    plan_return,
    refund_quantities,
)
from shopkeeper.returns.states import (
    HOLDING_STATUSES,
    OPEN_STATUSES,
    RETURN_TRANSITIONS,
    ReturnStatus,
    move_return,
)

R = ReturnStatus


def test_the_return_table():
    assert set(RETURN_TRANSITIONS) == set(ReturnStatus)
    assert move_return("requested", "received") == R.RECEIVED
    assert move_return("received", "refunded") == R.REFUNDED
    assert move_return("requested", "rejected") == R.REJECTED
    assert move_return("received", "rejected") == R.REJECTED  # after inspection
    for final in (R.REFUNDED, R.REJECTED):
        assert RETURN_TRANSITIONS[final] == frozenset()
    with pytest.raises(IllegalTransition):
        move_return("requested", "refunded")  # nothing received, nothing refunded
    assert OPEN_STATUSES < HOLDING_STATUSES and R.REJECTED not in HOLDING_STATUSES


def test_the_reasons_are_the_issues():
    assert set(REASONS) == {
        "damaged",
        "wrong_item",
        "not_as_described",
        "no_longer_needed",
        "other",
    }


def test_given_shipped_units_not_in_another_return_then_returnable():
    lines = [LineReturnable("A", shipped=2, held_by_returns=1), LineReturnable("B", shipped=1)]
    asked = (ReturnLineRequest("A", 1, "damaged"), ReturnLineRequest("B", 1, "other"))
    assert plan_return(lines, asked) == asked


@pytest.mark.parametrize(
    ("asked", "error"),
    [
        ((ReturnLineRequest("A", 2, "damaged"),), QuantityExceedsReturnable),
        (
            (ReturnLineRequest("A", 1, "damaged"), ReturnLineRequest("A", 1, "other")),
            QuantityExceedsReturnable,
        ),
        ((ReturnLineRequest("B", 1, "damaged"),), QuantityExceedsReturnable),  # not shipped
        ((ReturnLineRequest("Z", 1, "damaged"),), InvalidReturnLines),
        ((ReturnLineRequest("A", 0, "damaged"),), InvalidReturnLines),
        ((ReturnLineRequest("A", 1, "changed_my_mind"),), InvalidReturnReason),
        ((), InvalidReturnLines),
    ],
)
def test_given_bad_return_lines_then_refused(asked, error):
    lines = [LineReturnable("A", shipped=2, held_by_returns=1), LineReturnable("B", shipped=0)]
    with pytest.raises(error):
        plan_return(lines, asked)


def test_given_no_receipt_lines_then_everything_asked_is_received_not_restocked():
    assert plan_receipt({"A": 2}, None) == (ReceivedLine("A", 2, False),)


@pytest.mark.parametrize(
    ("received", "error"),
    [
        ((ReceivedLine("A", 3, True),), ReceivedExceedsRequested),
        ((ReceivedLine("Z", 1, True),), InvalidReturnLines),
        ((ReceivedLine("A", 1, True), ReceivedLine("A", 1, False)), InvalidReturnLines),
        ((ReceivedLine("A", -1, True),), InvalidReturnLines),
    ],
)
def test_given_bad_receipt_then_refused(received, error):
    with pytest.raises(error):
        plan_receipt({"A": 2}, received)


def test_the_refund_is_for_the_received_units_only():
    received = (ReceivedLine("A", 1, True), ReceivedLine("B", 0, False))
    assert refund_quantities(received) == {"A": 1}
    with pytest.raises(NothingReceived):
        refund_quantities((ReceivedLine("A", 0, False),))


@given(
    st.integers(0, 5),
    st.integers(0, 5),
    st.lists(st.tuples(st.integers(0, 3), st.sampled_from(REASONS)), min_size=1, max_size=4),
)
def test_returns_never_take_more_than_was_shipped(shipped, held, asked):
    line = LineReturnable("A", shipped=shipped, held_by_returns=min(held, shipped))
    requests = tuple(ReturnLineRequest("A", quantity, reason) for quantity, reason in asked)
    try:
        plan_return([line], requests)
    except (QuantityExceedsReturnable, InvalidReturnLines):
        return
    assert line.held_by_returns + sum(q for q, _ in asked) <= line.shipped
