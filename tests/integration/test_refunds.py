"""Refund use cases against the database and the fake gateway: every rule and its refusal.

A refused request changes nothing: no refund row, no ledger row, no call to Stripe.
"""

from __future__ import annotations

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.errors import InvalidAmount, PaymentDeclined, PaymentOutcomeUnknown
from shopkeeper.orders.models import Order, OrderLine
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.rules import (
    InvalidReason,
    InvalidRefundLines,
    LineRequest,
    OrderNotCaptured,
    RefundExceedsRefundable,
    ShippingAlreadyRefunded,
)
from shopkeeper.refunds.services import execute_refund, request_refund
from tests.factories import authorised_order, new_order, paid_order
from tests.integration.refund_fixtures import refund_count, refunded_minor

pytestmark = pytest.mark.django_db


def refunds_sent(gateway) -> int:
    return len({key for op, key in gateway.calls if op == "create_refund"})


def reload(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


# --- amounts --------------------------------------------------------------------------------


def test_given_paid_order_when_partial_refund_then_succeeded_ledger_and_partially_refunded(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)

    refund = request_refund(
        order_number=order.number, actor=manager, amount="7.50", reason="requested_by_customer"
    )

    assert refund.status == "succeeded" and refund.stripe_refund_id
    assert refunded_minor(order) == 750
    assert reload(order).payment_status == "partially_refunded"
    entry = LedgerEntry.objects.get(order=order, kind="refund")
    assert entry.external_id == refund.stripe_refund_id and entry.source == "shopkeeper"
    assert order_detail(reload(order))["refundable_minor"] == 2500 - 750


def test_given_repeated_partial_refunds_when_they_reach_the_total_then_refunded(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    for amount in ("10.00", "10.00", "5.00"):
        request_refund(order_number=order.number, actor=manager, amount=amount, reason="other")

    assert refunded_minor(order) == 2500
    assert reload(order).payment_status == "refunded"
    assert refunds_sent(fake_gateway) == 3


def test_given_no_amount_when_refunded_then_everything_refundable_is_refunded(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    request_refund(order_number=order.number, actor=manager, amount="5.00", reason="other")

    refund = request_refund(order_number=order.number, actor=manager, reason="duplicate")

    assert refund.amount_minor == 2000 and refund.status == "succeeded"
    assert reload(order).payment_status == "refunded"


@pytest.mark.parametrize("amount", ["25.01", "100"])
def test_given_amount_over_refundable_when_refunded_then_409_and_nothing_changes(
    fake_gateway, manager, amount
):
    order = paid_order(fake_gateway)
    calls = list(fake_gateway.calls)

    with pytest.raises(RefundExceedsRefundable) as error:
        request_refund(order_number=order.number, actor=manager, amount=amount, reason="other")

    assert error.value.code == "refund_exceeds_refundable"
    assert error.value.extra["refundable"] == "25.00"
    assert refund_count(order) == 0 and refunded_minor(order) == 0
    assert fake_gateway.calls == calls


def test_given_fully_refunded_order_when_refunded_again_then_409(fake_gateway, manager):
    order = paid_order(fake_gateway)
    request_refund(order_number=order.number, actor=manager, reason="other")

    with pytest.raises(RefundExceedsRefundable):
        request_refund(order_number=order.number, actor=manager, amount="0.01", reason="other")
    assert refund_count(order) == 1


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "12.345", "abc", "", "1e3", 12.5, 10])
def test_given_bad_amount_when_refunded_then_invalid_amount_and_nothing_changes(
    fake_gateway, manager, amount
):
    order = paid_order(fake_gateway)
    calls = list(fake_gateway.calls)

    with pytest.raises(InvalidAmount) as error:
        request_refund(order_number=order.number, actor=manager, amount=amount, reason="other")

    assert error.value.code == "invalid_amount"
    assert refund_count(order) == 0 and fake_gateway.calls == calls


def test_given_zero_decimal_currency_when_refunded_then_whole_yen_only(fake_gateway, manager):
    order = paid_order(fake_gateway, items={"TEA": 1}, price="1200", currency="JPY")

    with pytest.raises(InvalidAmount):
        request_refund(order_number=order.number, actor=manager, amount="100.5", reason="other")
    refund = request_refund(order_number=order.number, actor=manager, amount="500", reason="other")

    assert refund.amount_minor == 500 and refund.currency == "JPY"


def test_given_unknown_reason_when_refunded_then_invalid_reason(fake_gateway, manager):
    order = paid_order(fake_gateway)
    with pytest.raises(InvalidReason):
        request_refund(order_number=order.number, actor=manager, amount="1.00", reason="because")
    assert refund_count(order) == 0


# --- payment states -------------------------------------------------------------------------


def test_given_authorised_order_when_refunded_then_order_not_captured(fake_gateway, manager):
    order = authorised_order(fake_gateway, items={"MUG": 1}, email="a@example.com")
    assert reload(order).payment_status == "authorized"

    with pytest.raises(OrderNotCaptured) as error:
        request_refund(order_number=order.number, actor=manager, reason="other")

    assert error.value.code == "order_not_captured" and "cancel" in error.value.detail
    assert refund_count(order) == 0


def test_given_unpaid_order_when_refunded_then_order_not_captured(fake_gateway, manager):
    order = new_order(fake_gateway, items={"MUG": 1}, email="a@example.com")
    with pytest.raises(OrderNotCaptured):
        request_refund(order_number=order.number, actor=manager, reason="other")


# --- lines, shipping and restock -----------------------------------------------------------


def test_given_lines_with_restock_when_refunded_then_amount_from_lines_and_stock_returned(
    fake_gateway, manager
):
    order = paid_order(fake_gateway, items={"MUG": 2, "CUP": 3})
    mug = OrderLine.objects.get(order=order, sku="MUG")
    cup = OrderLine.objects.get(order=order, sku="CUP")
    mug_stock = Product.objects.get(sku="MUG").stock

    refund = request_refund(
        order_number=order.number,
        actor=manager,
        lines=[LineRequest(mug.pk, 1, restock=True), LineRequest(cup.pk, 2)],
        include_shipping=True,
        reason="requested_by_customer",
    )

    assert refund.amount_minor == 1000 + 2000 + 500
    assert Product.objects.get(sku="MUG").stock == mug_stock + 1
    mug.refresh_from_db()
    cup.refresh_from_db()
    assert (mug.restocked_quantity, cup.restocked_quantity) == (1, 0)
    lines = {line.order_line_id: line for line in refund.lines.all()}
    assert (lines[mug.pk].quantity, lines[mug.pk].amount_minor) == (1, 1000)


def test_given_line_partly_refunded_when_more_than_the_rest_asked_then_409(fake_gateway, manager):
    order = paid_order(fake_gateway, items={"MUG": 2})
    mug = OrderLine.objects.get(order=order)
    request_refund(
        order_number=order.number, actor=manager, lines=[LineRequest(mug.pk, 1)], reason="other"
    )

    with pytest.raises(RefundExceedsRefundable) as error:
        request_refund(
            order_number=order.number,
            actor=manager,
            lines=[LineRequest(mug.pk, 2)],
            reason="other",
        )
    assert error.value.extra["refundable_quantity"] == 1
    assert refund_count(order) == 1


def test_given_failed_line_refund_when_line_refunded_again_then_its_units_count_as_free(
    fake_gateway, manager
):
    order = paid_order(fake_gateway, items={"MUG": 1})
    mug = OrderLine.objects.get(order=order)
    fake_gateway.fail_next["create_refund"] = [PaymentDeclined("Refund declined")]
    first = request_refund(
        order_number=order.number, actor=manager, lines=[LineRequest(mug.pk, 1)], reason="other"
    )
    assert first.status == "failed"

    second = request_refund(
        order_number=order.number, actor=manager, lines=[LineRequest(mug.pk, 1)], reason="other"
    )
    assert second.status == "succeeded"


@pytest.mark.parametrize(
    "lines",
    [
        [LineRequest(999_999, 1)],
        [LineRequest(-1, 1)],
        "twice",
        "zero",
    ],
)
def test_given_bad_lines_when_refunded_then_invalid_refund_lines(fake_gateway, manager, lines):
    order = paid_order(fake_gateway)
    mug = OrderLine.objects.get(order=order)
    if lines == "twice":
        lines = [LineRequest(mug.pk, 1), LineRequest(mug.pk, 1)]
    elif lines == "zero":
        lines = [LineRequest(mug.pk, 0)]

    with pytest.raises(InvalidRefundLines):
        request_refund(order_number=order.number, actor=manager, lines=lines, reason="other")
    assert refund_count(order) == 0


def test_given_line_of_another_order_when_refunded_then_invalid_refund_lines(fake_gateway, manager):
    order, other = paid_order(fake_gateway), paid_order(fake_gateway)
    foreign = OrderLine.objects.get(order=other)
    with pytest.raises(InvalidRefundLines):
        request_refund(
            order_number=order.number,
            actor=manager,
            lines=[LineRequest(foreign.pk, 1)],
            reason="other",
        )


def test_given_amount_with_lines_when_lower_then_used_and_when_higher_then_invalid(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    mug = OrderLine.objects.get(order=order)

    with pytest.raises(InvalidAmount):
        request_refund(
            order_number=order.number,
            actor=manager,
            amount="10.01",
            lines=[LineRequest(mug.pk, 1)],
            reason="other",
        )
    refund = request_refund(
        order_number=order.number,
        actor=manager,
        amount="8.00",
        lines=[LineRequest(mug.pk, 1)],
        reason="other",
    )
    assert refund.amount_minor == 800


def test_given_shipping_refunded_when_shipping_asked_again_then_409(fake_gateway, manager):
    order = paid_order(fake_gateway)
    request_refund(order_number=order.number, actor=manager, include_shipping=True, reason="other")

    with pytest.raises(ShippingAlreadyRefunded):
        request_refund(
            order_number=order.number, actor=manager, include_shipping=True, reason="other"
        )
    assert refunded_minor(order) == 500


# --- Stripe's answers -----------------------------------------------------------------------


def test_given_stripe_declines_when_refunded_then_failed_with_message_and_amount_released(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [PaymentDeclined("The bank said no")]

    refund = request_refund(
        order_number=order.number, actor=manager, amount="20.00", reason="other"
    )

    assert refund.status == "failed" and refund.failure_message == "The bank said no"
    assert refunded_minor(order) == 0 and reload(order).payment_status == "paid"
    assert order_detail(reload(order))["refundable_minor"] == 2500
    assert AuditEntry.objects.filter(action="order.refund.failed").count() == 1


def test_given_stripe_pending_when_refunded_then_pending_and_reserved(fake_gateway, manager):
    order = paid_order(fake_gateway)
    fake_gateway.refund_status = "pending"

    refund = request_refund(
        order_number=order.number, actor=manager, amount="20.00", reason="other"
    )

    assert refund.status == "pending" and refund.stripe_refund_id
    assert refunded_minor(order) == 0
    assert order_detail(reload(order))["refundable_minor"] == 500
    with pytest.raises(RefundExceedsRefundable):
        request_refund(order_number=order.number, actor=manager, amount="5.01", reason="other")


def test_given_stripe_answered_503_once_when_refunded_then_retried_with_same_key_and_one_refund(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [PaymentOutcomeUnknown("503", in_flight=False)]

    refund = request_refund(order_number=order.number, actor=manager, amount="9.00", reason="other")

    keys = [key for op, key in fake_gateway.calls if op == "create_refund"]
    assert len(keys) == 2 and len(set(keys)) == 1
    assert len(fake_gateway.refunds) == 1
    assert refund.status == "succeeded" and refund.attempts == 2
    assert refunded_minor(order) == 900


def test_given_response_lost_when_refunded_then_not_sent_again_while_it_may_be_in_flight(
    fake_gateway, manager
):
    """The lost answer's send may still be queued at Stripe: a resend now could refund twice."""
    order = paid_order(fake_gateway)
    fake_gateway.lose_next_response.add("create_refund")

    refund = request_refund(order_number=order.number, actor=manager, amount="9.00", reason="other")
    again = execute_refund(refund_id=refund.pk)  # a second process, within the window

    assert [op for op, _ in fake_gateway.calls if op == "create_refund"] == ["create_refund"]
    assert (refund.status, refund.attempts, again.attempts) == ("pending", 1, 1)
    assert refund.last_sent_at is not None and refunded_minor(order) == 0


def test_given_stripe_never_answers_when_refunded_then_left_pending_never_failed(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [PaymentOutcomeUnknown("timeout")] * 3

    refund = request_refund(order_number=order.number, actor=manager, amount="9.00", reason="other")

    assert refund.status == "pending" and not refund.stripe_refund_id
    assert refund.attempts == 1 and refunded_minor(order) == 0  # a timeout: not resent at once
    assert order_detail(reload(order))["refundable_minor"] == 1600
    assert AuditEntry.objects.filter(action="order.refund.outcome_unknown").exists()


def test_given_unknown_then_refusal_when_refunded_then_pending_not_failed(fake_gateway, manager):
    """After an unknown outcome a refusal may only mean the retry collided with the first try."""
    from shopkeeper.errors import PaymentRequestInvalid

    order = paid_order(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [
        PaymentOutcomeUnknown("503", in_flight=False),
        PaymentRequestInvalid("Keys for idempotent requests can only be used once"),
    ]

    refund = request_refund(order_number=order.number, actor=manager, amount="9.00", reason="other")

    assert refund.status == "pending"


def test_given_refund_request_then_audit_rows_name_actor_and_refund(fake_gateway, manager):
    order = paid_order(fake_gateway)
    refund = request_refund(order_number=order.number, actor=manager, amount="1.00", reason="other")

    entries = AuditEntry.objects.filter(target_id=order.number, action__startswith="order.refund")
    assert [e.action for e in entries] == ["order.refund.requested", "order.refund.succeeded"]
    assert all(e.actor_email == manager.email for e in entries)
    assert entries[0].details["refund_id"] == refund.pk
    assert entries[1].after == {"status": "succeeded", "payment_status": "partially_refunded"}


def test_metadata_and_key_sent_to_stripe_come_from_the_refund_row(fake_gateway, manager):
    order = paid_order(fake_gateway)
    refund = request_refund(order_number=order.number, actor=manager, amount="1.00", reason="other")

    snapshot = fake_gateway.refunds[refund.stripe_refund_id]
    assert snapshot.metadata["refund_key"] == str(refund.key)
    assert snapshot.metadata["order_number"] == order.number
    assert ("create_refund", f"refund-{refund.key}") in fake_gateway.calls
    assert Refund.objects.get(pk=refund.pk).stripe_refund_id == snapshot.id
