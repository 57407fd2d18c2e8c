"""Shipments and the fulfilment status: the table, what may ship, when an order is done."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.errors import IllegalTransition
from shopkeeper.fulfilment.rules import (
    InvalidShipmentLines,
    LineFulfilment,
    OrderCancelled,
    OrderNotPaid,
    QuantityExceedsUnshipped,
    ensure_shippable,
    ensure_tracking,
    fulfillment_status,
    is_done,
    plan_shipment,
)
from shopkeeper.fulfilment.states import (
    SHIPMENT_TRANSITIONS,
    FulfillmentStatus,
    ShipmentStatus,
    move_shipment,
)
from shopkeeper.orders.states import OrderStatus
from shopkeeper.payments.states import PaymentStatus

F = FulfillmentStatus


def test_the_shipment_table_moves_shipped_to_delivered_and_never_back():
    assert set(SHIPMENT_TRANSITIONS) == set(ShipmentStatus)
    assert move_shipment("shipped", "delivered") == ShipmentStatus.DELIVERED
    assert move_shipment("delivered", "delivered") == ShipmentStatus.DELIVERED  # replay: no-op
    with pytest.raises(IllegalTransition):
        move_shipment("delivered", "shipped")


@pytest.mark.parametrize(
    ("line", "left"),
    [
        (LineFulfilment("A", 3), 3),
        (LineFulfilment("A", 3, shipped=1), 2),
        (LineFulfilment("A", 3, refunded=1), 2),  # refunded before shipping: not sent
        (LineFulfilment("A", 3, shipped=3, refunded=1), 0),  # goodwill on shipped goods
        (LineFulfilment("A", 3, shipped=2, refunded=2), 0),  # one unshipped refunded, one not
        (LineFulfilment("A", 3, shipped=2, refunded=1, returned_refunded=1), 1),  # a return
        (LineFulfilment("A", 2, refunded=2), 0),
    ],
)
def test_given_shipped_and_refunded_units_then_what_is_left_to_ship(line, left):
    assert line.left_to_ship == left


def test_the_fulfilment_status_follows_the_lines():
    assert fulfillment_status([LineFulfilment("A", 2), LineFulfilment("B", 1)]) == F.UNFULFILLED
    partly = [LineFulfilment("A", 2, shipped=2), LineFulfilment("B", 1)]
    assert fulfillment_status(partly) == F.PARTIALLY_FULFILLED
    done = [LineFulfilment("A", 2, shipped=2), LineFulfilment("B", 1, refunded=1)]
    assert fulfillment_status(done) == F.FULFILLED
    assert fulfillment_status([LineFulfilment("A", 1, refunded=1)]) == F.UNFULFILLED


@pytest.mark.parametrize("payment", ["authorized", "paid", "partially_refunded"])
def test_given_money_certain_then_shippable(payment):
    ensure_shippable("processing", payment)


@pytest.mark.parametrize("payment", ["pending", "failed", "voided", "refunded"])
def test_given_no_money_then_order_not_paid(payment):
    with pytest.raises(OrderNotPaid):
        ensure_shippable("processing" if payment == "refunded" else "pending", payment)


def test_given_cancelled_then_order_cancelled_whatever_the_payment():
    with pytest.raises(OrderCancelled):
        ensure_shippable("cancelled", "voided")


def test_given_no_lines_named_then_everything_left_ships():
    lines = [
        LineFulfilment("A", 2, shipped=1),
        LineFulfilment("B", 1),
        LineFulfilment("C", 1, shipped=1),
    ]
    assert plan_shipment(lines, None) == {"A": 1, "B": 1}


def test_given_everything_shipped_then_nothing_to_ship_is_refused():
    with pytest.raises(QuantityExceedsUnshipped):
        plan_shipment([LineFulfilment("A", 1, shipped=1)], None)


@pytest.mark.parametrize(
    ("requested", "error"),
    [
        ({"A": 2}, QuantityExceedsUnshipped),
        ({"Z": 1}, InvalidShipmentLines),
        ({"A": 0}, InvalidShipmentLines),
        ({}, InvalidShipmentLines),
    ],
)
def test_given_bad_lines_then_refused(requested, error):
    with pytest.raises(error):
        plan_shipment([LineFulfilment("A", 2, shipped=1)], requested)


def test_given_a_long_tracking_number_then_refused():
    assert ensure_tracking(" DHL ", " 123 ") == ("DHL", "123")
    with pytest.raises(Exception, match="tracking number"):
        ensure_tracking("DHL", "9" * 101)


@pytest.mark.parametrize(
    ("order", "payment", "open_refunds", "open_returns", "done"),
    [
        ("processing", "paid", False, False, True),
        ("processing", "partially_refunded", False, False, True),
        ("processing", "authorized", False, False, False),  # not captured yet
        ("processing", "paid", True, False, False),
        ("processing", "paid", False, True, False),
        ("cancelled", "refunded", False, False, False),
        ("closed", "paid", False, False, False),  # already: not a move
    ],
)
def test_given_all_shipped_then_done_only_when_the_money_is_settled(
    order, payment, open_refunds, open_returns, done
):
    lines = [LineFulfilment("A", 2, shipped=2)]
    assert (
        is_done(order, payment, lines, open_refunds=open_refunds, open_returns=open_returns) is done
    )


def test_given_a_dispute_open_then_not_done():
    lines = [LineFulfilment("A", 1, shipped=1)]
    assert not is_done(
        "processing", "paid", lines, open_refunds=False, open_returns=False, open_disputes=True
    )


def test_given_everything_refunded_before_anything_shipped_then_not_done_but_cancellable():
    lines = [LineFulfilment("A", 2, refunded=2), LineFulfilment("B", 1, refunded=1)]
    assert not is_done("processing", "refunded", lines, open_refunds=False, open_returns=False)


def test_given_one_line_shipped_and_the_other_refunded_then_done():
    lines = [LineFulfilment("A", 2, shipped=2), LineFulfilment("B", 1, refunded=1)]
    assert is_done(
        "processing", "partially_refunded", lines, open_refunds=False, open_returns=False
    )


@st.composite
def line_histories(draw):
    quantity = draw(st.integers(1, 6))
    shipped = draw(st.integers(0, quantity))
    returned_refunded = draw(st.integers(0, shipped))
    refunded = draw(st.integers(returned_refunded, quantity))
    return LineFulfilment("A", quantity, shipped, refunded, returned_refunded)


@given(line_histories())
def test_whatever_happened_then_shipped_plus_left_plus_refunded_unshipped_is_the_quantity(line):
    assert line.left_to_ship >= 0
    assert line.shipped + line.left_to_ship + line.refunded_unshipped == line.quantity
    if line.left_to_ship:
        assert plan_shipment([line], None) == {"A": line.left_to_ship}


@given(line_histories(), st.integers(1, 7))
def test_a_planned_shipment_never_takes_shipped_past_the_quantity(line, asked):
    try:
        plan = plan_shipment([line], {"A": asked})
    except QuantityExceedsUnshipped:
        assert asked > line.left_to_ship
        return
    assert line.shipped + plan["A"] <= line.quantity


def test_every_order_status_and_payment_status_is_judged():
    lines = [LineFulfilment("A", 1, shipped=1)]
    for order in OrderStatus:
        for payment in PaymentStatus:
            is_done(order, payment, lines, open_refunds=False, open_returns=False)
