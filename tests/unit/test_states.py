"""The order and payment state machines: the tables, the guards, and what no sequence can break."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.errors import Conflict, IllegalTransition
from shopkeeper.fulfilment.states import SHIPMENT_TRANSITIONS
from shopkeeper.orders.rules import (
    OrderNotCancellable,
    OrderPaidRefundFirst,
    RefundInProgress,
    ensure_cancellable,
)
from shopkeeper.orders.states import ORDER_TRANSITIONS, OrderStatus, can_move_order, move_order
from shopkeeper.payments.states import (
    PAYMENT_TRANSITIONS,
    PaymentStatus,
    can_move_payment,
    move_payment,
)
from shopkeeper.returns.states import RETURN_TRANSITIONS

OS, P = OrderStatus, PaymentStatus


def test_the_tables_cover_every_status_the_issue_names() -> None:
    assert {s.value for s in OrderStatus} >= {"pending", "processing", "cancelled", "closed"}
    assert {s.value for s in PaymentStatus} >= {
        "pending",
        "authorized",
        "paid",
        "partially_refunded",
        "refunded",
        "voided",
        "failed",
    }
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)
    assert set(PAYMENT_TRANSITIONS) == set(PaymentStatus)


def test_the_tables_only_name_known_statuses_and_never_a_self_move() -> None:
    for current, targets in ORDER_TRANSITIONS.items():
        assert targets <= set(OrderStatus)
        assert current not in targets
    for payment_current, payment_targets in PAYMENT_TRANSITIONS.items():
        assert payment_targets <= set(PaymentStatus)
        assert payment_current not in payment_targets


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (OS.PENDING, OS.PROCESSING),
        (OS.PENDING, OS.CANCELLED),
        (OS.PROCESSING, OS.CLOSED),
        (OS.PROCESSING, OS.CANCELLED),
    ],
)
def test_given_an_allowed_order_move_then_it_returns_the_target(
    current: OrderStatus, target: OrderStatus
) -> None:
    assert move_order(current, target) == target
    assert move_order(current.value, target.value) == target  # strings from the database


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (OS.CANCELLED, OS.PENDING),
        (OS.CANCELLED, OS.PROCESSING),
        (OS.CLOSED, OS.PROCESSING),
        (OS.CLOSED, OS.CANCELLED),
        (OS.PROCESSING, OS.PENDING),
        (OS.PENDING, OS.CLOSED),
    ],
)
def test_given_an_illegal_order_move_then_illegal_transition_is_raised(
    current: OrderStatus, target: OrderStatus
) -> None:
    with pytest.raises(IllegalTransition) as raised:
        move_order(current, target)
    assert raised.value.code == "illegal_transition"
    assert raised.value.extra == {"kind": "order", "current": current, "target": target}
    assert isinstance(raised.value, Conflict)  # a 409 for the API


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (P.PENDING, P.AUTHORIZED),
        (P.PENDING, P.PAID),
        (P.PENDING, P.FAILED),
        (P.FAILED, P.PAID),  # the customer retries after a decline
        (P.AUTHORIZED, P.PAID),
        (P.AUTHORIZED, P.VOIDED),
        (P.PAID, P.PARTIALLY_REFUNDED),
        (P.PAID, P.REFUNDED),
        (P.PARTIALLY_REFUNDED, P.REFUNDED),
        (P.REFUNDED, P.PARTIALLY_REFUNDED),  # a refund reported failed after it succeeded
        (P.VOIDED, P.PAID),  # a cancelled order paid late through another PaymentIntent
        (P.VOIDED, P.AUTHORIZED),
    ],
)
def test_given_an_allowed_payment_move_then_it_returns_the_target(
    current: PaymentStatus, target: PaymentStatus
) -> None:
    assert move_payment(current, target) == target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (P.PAID, P.PENDING),
        (P.PAID, P.VOIDED),  # captured money is refunded, never voided
        (P.PAID, P.AUTHORIZED),
        (P.AUTHORIZED, P.REFUNDED),  # uncaptured money is voided, never refunded
        (P.AUTHORIZED, P.PARTIALLY_REFUNDED),
        (P.VOIDED, P.PENDING),
        (P.VOIDED, P.REFUNDED),  # only money the order holds goes back
        (P.REFUNDED, P.AUTHORIZED),
        (P.PENDING, P.REFUNDED),
        (P.FAILED, P.REFUNDED),
    ],
)
def test_given_an_illegal_payment_move_then_illegal_transition_is_raised(
    current: PaymentStatus, target: PaymentStatus
) -> None:
    with pytest.raises(IllegalTransition):
        move_payment(current, target)
    assert not can_move_payment(current, target)


@pytest.mark.parametrize("status", list(PaymentStatus))
def test_given_the_same_status_then_it_is_not_a_move_and_always_allowed(
    status: PaymentStatus,
) -> None:
    # Replayed webhooks and retried requests land here: a no-op, not an error.
    assert move_payment(status, status) == status


def test_given_an_unknown_status_then_it_is_refused() -> None:
    with pytest.raises(ValueError):
        move_order("shipped", OS.CLOSED)
    with pytest.raises(ValueError):
        move_payment(P.PAID, "chargeback")


def test_closed_and_cancelled_are_terminal_and_voided_leads_only_to_money_taken_late() -> None:
    # A voided authorisation is never captured (the ledger refuses it); the order's payment
    # status leaves voided only when another PaymentIntent of the order takes money.
    assert PAYMENT_TRANSITIONS[P.VOIDED] == frozenset({P.AUTHORIZED, P.PAID})
    assert ORDER_TRANSITIONS[OS.CLOSED] == frozenset()
    assert ORDER_TRANSITIONS[OS.CANCELLED] == frozenset()


@pytest.mark.parametrize(
    ("payment_status", "pending_refund", "error"),
    [
        (P.PAID, False, OrderPaidRefundFirst),
        (P.PARTIALLY_REFUNDED, False, OrderPaidRefundFirst),
        (P.REFUNDED, True, RefundInProgress),
    ],
)
def test_given_money_still_held_when_cancelling_then_the_rule_refuses_with_its_code(
    payment_status: PaymentStatus, pending_refund: bool, error: type[Conflict]
) -> None:
    with pytest.raises(error):
        ensure_cancellable(OS.PROCESSING, payment_status, has_pending_refund=pending_refund)


@pytest.mark.parametrize("payment_status", [P.PENDING, P.FAILED, P.AUTHORIZED, P.REFUNDED])
def test_given_nothing_held_when_cancelling_an_open_order_then_the_rule_allows_it(
    payment_status: PaymentStatus,
) -> None:
    ensure_cancellable(OS.PROCESSING, payment_status)
    ensure_cancellable(OS.PENDING, payment_status)


@pytest.mark.parametrize("order_status", [OS.CANCELLED, OS.CLOSED])
def test_given_a_finished_order_when_cancelling_then_it_is_not_cancellable(
    order_status: OrderStatus,
) -> None:
    with pytest.raises(OrderNotCancellable):
        ensure_cancellable(order_status, P.PENDING)


def _walk(
    can_move: Callable[[Any, Any], bool],
    move: Callable[[Any, Any], Any],
    start: Any,
    choices: list[Any],
) -> list[Any]:
    """Attempt every chosen move from `start`; return the statuses visited."""
    current, visited = start, [start]
    for target in choices:
        if can_move(current, target):
            current = move(current, target)
        else:
            with pytest.raises(IllegalTransition):
                move(current, target)
        visited.append(current)
    return visited


@given(st.lists(st.sampled_from(list(PaymentStatus)), max_size=40))
def test_property_random_payment_moves_only_ever_follow_the_table(
    targets: list[PaymentStatus],
) -> None:
    visited = _walk(can_move_payment, move_payment, P.PENDING, targets)
    for before, after in itertools.pairwise(visited):
        assert after == before or after in PAYMENT_TRANSITIONS[before]


@given(st.lists(st.sampled_from(list(OrderStatus)), max_size=20))
def test_property_random_order_moves_only_ever_follow_the_table(
    targets: list[OrderStatus],
) -> None:
    visited = _walk(can_move_order, move_order, OS.PENDING, targets)
    for before, after in itertools.pairwise(visited):
        assert after == before or after in ORDER_TRANSITIONS[before]
    # Nothing leaves a terminal status.
    for index, status in enumerate(visited):
        if not ORDER_TRANSITIONS[status]:
            assert set(visited[index:]) == {status}


@given(st.sampled_from(list(PaymentStatus)), st.sampled_from(list(PaymentStatus)))
def test_property_can_move_and_move_agree(current: PaymentStatus, target: PaymentStatus) -> None:
    if can_move_payment(current, target):
        assert move_payment(current, target) == target
    else:
        with pytest.raises(IllegalTransition):
            move_payment(current, target)


def test_every_payment_status_is_reachable_from_pending() -> None:
    reached, frontier = {P.PENDING}, [P.PENDING]
    while frontier:
        for target in PAYMENT_TRANSITIONS[frontier.pop()]:
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(PaymentStatus)


DOC = Path(__file__).resolve().parents[2] / "docs" / "state-machine.md"


def documented_table(heading: str) -> dict[str, set[str]]:
    """The first Markdown table under `heading` in docs/state-machine.md: from -> targets."""
    section = DOC.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith("`"):
            table[cells[0].strip("`")] = set(re.findall(r"`([a-z_]+)`", cells[1]))
        elif table:
            break
    return table


def test_the_documented_order_table_is_the_code() -> None:
    expected = {str(s): {str(t) for t in targets} for s, targets in ORDER_TRANSITIONS.items()}
    assert documented_table("Order status") == expected


def test_the_documented_payment_table_is_the_code() -> None:
    expected = {str(s): {str(t) for t in targets} for s, targets in PAYMENT_TRANSITIONS.items()}
    assert documented_table("Payment status") == expected


def test_the_documented_diagrams_draw_exactly_the_table_moves() -> None:
    arrows = set(re.findall(r"^\s+([a-z_]+) --> ([a-z_]+)", DOC.read_text(), re.MULTILINE))
    moves = {(str(s), str(t)) for s, ts in ORDER_TRANSITIONS.items() for t in ts}
    moves |= {(str(s), str(t)) for s, ts in PAYMENT_TRANSITIONS.items() for t in ts}
    moves |= {(str(s), str(t)) for s, ts in SHIPMENT_TRANSITIONS.items() for t in ts}
    moves |= {(str(s), str(t)) for s, ts in RETURN_TRANSITIONS.items() for t in ts}
    assert arrows == moves


def test_the_documented_shipment_and_return_tables_are_the_code() -> None:
    for heading, table in (
        ("Shipment status", SHIPMENT_TRANSITIONS),
        ("Return status", RETURN_TRANSITIONS),
    ):
        expected = {str(s): {str(t) for t in targets} for s, targets in table.items()}
        assert documented_table(heading) == expected
