"""The pure rules for which order actions staff are offered (API `available_actions` and UI)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.accounts.permissions import ROLE_PERMISSIONS, Permission, Role
from shopkeeper.orders.actions import (
    CANCEL_BLOCKED_PAID,
    CANCEL_BLOCKED_REFUND_PENDING,
    available_actions,
    cancel_blocked_reason,
)
from shopkeeper.orders.rules import (
    OrderNotCancellable,
    OrderNotCapturable,
    OrderPaidRefundFirst,
    RefundInProgress,
    ensure_cancellable,
    ensure_capturable,
)
from shopkeeper.orders.states import OrderStatus
from shopkeeper.payments.states import PaymentStatus

OWNER = ROLE_PERMISSIONS[Role.OWNER]
SUPPORT = ROLE_PERMISSIONS[Role.SUPPORT]
VIEWER = ROLE_PERMISSIONS[Role.VIEWER]


def actions(order_status, payment_status, permissions=OWNER, pending=False, refundable=0):
    return available_actions(
        order_status, payment_status, permissions, pending, refundable_minor=refundable
    )


def test_given_paid_order_with_refundable_money_when_owner_asks_then_refund_only():
    assert actions("processing", "paid", refundable=2600) == ["refund"]


def test_given_paid_order_then_cancel_is_blocked_with_the_refund_first_reason():
    reason = cancel_blocked_reason("processing", "paid", has_pending_refund=False)
    assert reason == CANCEL_BLOCKED_PAID
    assert reason == "a paid order must be refunded in full before it can be cancelled"


def test_given_partially_refunded_order_then_refund_offered_and_cancel_blocked():
    assert actions("processing", "partially_refunded", refundable=100) == ["refund"]
    assert (
        cancel_blocked_reason("processing", "partially_refunded", has_pending_refund=False)
        == CANCEL_BLOCKED_PAID
    )


def test_given_paid_order_whose_refundable_is_all_pending_then_no_refund_offered():
    assert actions("processing", "partially_refunded", pending=True, refundable=0) == []


def test_given_authorised_order_when_owner_asks_then_capture_and_cancel():
    assert actions("processing", "authorized") == ["capture", "cancel"]


def test_given_authorised_order_when_support_asks_then_cancel_only():
    # support may cancel but not capture (permission table)
    assert actions("processing", "authorized", permissions=SUPPORT) == ["cancel"]


@pytest.mark.parametrize("payment_status", ["pending", "failed"])
def test_given_unpaid_order_then_only_cancel(payment_status):
    assert actions("pending", payment_status) == ["cancel"]


def test_given_fully_refunded_order_with_nothing_pending_then_cancel_offered():
    assert actions("processing", "refunded") == ["cancel"]
    assert cancel_blocked_reason("processing", "refunded", has_pending_refund=False) is None


def test_given_refund_still_pending_then_cancel_blocked_with_reason():
    assert actions("processing", "refunded", pending=True) == []
    assert (
        cancel_blocked_reason("processing", "refunded", has_pending_refund=True)
        == CANCEL_BLOCKED_REFUND_PENDING
    )


def test_given_cancelled_order_then_nothing_offered_and_reason_says_so():
    assert actions("cancelled", "voided") == []
    assert cancel_blocked_reason("cancelled", "voided", has_pending_refund=False) == (
        "this order is already cancelled"
    )


def test_given_viewer_then_no_action_whatever_the_order():
    for payment_status in PaymentStatus:
        assert actions("processing", payment_status, permissions=VIEWER, refundable=5) == []


def test_given_no_permissions_then_nothing_offered():
    assert actions("processing", "authorized", permissions=frozenset()) == []


def test_ensure_cancellable_raises_the_issue_codes():
    with pytest.raises(OrderPaidRefundFirst) as paid:
        ensure_cancellable("processing", "paid")
    with pytest.raises(RefundInProgress) as pending:
        ensure_cancellable("processing", "refunded", has_pending_refund=True)
    assert paid.value.code == "order_paid_refund_first"
    assert pending.value.code == "refund_in_progress"


def test_ensure_capturable_refuses_all_but_an_open_authorisation():
    ensure_capturable("processing", "authorized")
    for payment_status in set(PaymentStatus) - {PaymentStatus.AUTHORIZED}:
        with pytest.raises(OrderNotCapturable):
            ensure_capturable("processing", payment_status)
    with pytest.raises(OrderNotCapturable):
        ensure_capturable("cancelled", "authorized")


statuses = st.tuples(st.sampled_from(OrderStatus), st.sampled_from(PaymentStatus))
permission_sets = st.frozensets(st.sampled_from(Permission))


@given(statuses, permission_sets, st.booleans(), st.integers(min_value=0, max_value=10_000))
def test_property_an_offered_action_is_one_the_rules_accept(state, permissions, pending, money):
    order_status, payment_status = state
    offered = actions(order_status, payment_status, permissions, pending, money)
    assert len(offered) == len(set(offered))
    if "cancel" in offered:
        assert Permission.ORDERS_CANCEL in permissions
        ensure_cancellable(order_status, payment_status, has_pending_refund=pending)
    if "capture" in offered:
        assert Permission.ORDERS_CAPTURE in permissions
        ensure_capturable(order_status, payment_status)
    if "refund" in offered:
        assert Permission.ORDERS_REFUND in permissions and money > 0


@given(statuses, st.booleans())
def test_property_cancel_offered_to_a_canceller_exactly_when_no_reason_blocks_it(state, pending):
    order_status, payment_status = state
    offered = "cancel" in actions(order_status, payment_status, OWNER, pending)
    reason = cancel_blocked_reason(order_status, payment_status, has_pending_refund=pending)
    assert offered == (reason is None)
    try:
        ensure_cancellable(order_status, payment_status, has_pending_refund=pending)
    except (OrderNotCancellable, OrderPaidRefundFirst, RefundInProgress):
        assert reason


def test_given_paid_order_with_a_refund_on_its_way_then_the_answer_is_refund_in_progress():
    # staff have already acted: the useful answer is to wait for the refund to settle
    with pytest.raises(RefundInProgress):
        ensure_cancellable("processing", "paid", has_pending_refund=True)
    assert (
        cancel_blocked_reason("processing", "paid", has_pending_refund=True)
        == CANCEL_BLOCKED_REFUND_PENDING
    )
