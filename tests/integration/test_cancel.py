"""Cancelling an order: the issue's rules, Stripe outside the lock, and failure handling."""

from __future__ import annotations

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.orders.lookups import OrderNotFound
from shopkeeper.orders.models import Order
from shopkeeper.orders.rules import OrderNotCancellable, OrderPaidRefundFirst, RefundInProgress
from shopkeeper.orders.services import CancelReasonRequired, cancel_order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.selectors import order_balance
from shopkeeper.payments.services import apply_intent
from tests.factories import authorised_order, new_order, paid_order, requested_refund
from tests.integration.orders_admin_fixtures import intent_id

pytestmark = pytest.mark.django_db


def stock(sku: str = "MUG") -> int:
    return Product.objects.get(sku=sku).stock


def cancel_calls(gateway) -> list[str]:
    return [key for op, key in gateway.calls if op == "cancel_payment_intent"]


def ledger_kinds(order: Order) -> list[tuple[str, int]]:
    return list(LedgerEntry.objects.filter(order=order).values_list("kind", "amount_minor"))


def test_given_unpaid_order_when_cancelled_then_intent_cancelled_stock_back_and_audited(
    fake_gateway, settings, support
):
    order = new_order(fake_gateway, price="10.50", stock=10)
    assert stock() == 8

    cancelled = cancel_order(
        order_number=order.number, reason="customer changed mind", actor=support
    )

    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "voided")
    assert cancelled.cancel_reason == "customer changed mind" and cancelled.cancelled_at
    pi = intent_id(order)
    assert fake_gateway.intents[pi].status == "canceled"  # it can no longer be paid
    assert cancel_calls(fake_gateway) == [f"order-{order.number}-cancel-{pi}"]
    assert order.payments.get().intent_status == "canceled"
    assert stock() == 10
    assert list(order.lines.values_list("restocked_quantity", flat=True)) == [2]
    entry = AuditEntry.objects.get(action="order.cancelled")
    assert (entry.actor_id, entry.actor_email) == (support.pk, "support@shop.example")
    assert entry.target_id == order.number
    assert entry.before == {"status": "pending", "payment_status": "pending"}
    assert entry.after == {"status": "cancelled", "payment_status": "voided"}
    assert entry.details["reason"] == "customer changed mind"
    assert entry.details["restocked"] == {"MUG": 2}


def test_given_failed_payment_when_cancelled_then_voided(fake_gateway, settings, support):
    order = new_order(fake_gateway, price="10.50", stock=10, decline=True)
    assert order.payment_status == "failed"

    cancelled = cancel_order(order_number=order.number, reason="declined twice", actor=support)

    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "voided")
    assert fake_gateway.intents[intent_id(order)].status == "canceled"


def test_given_authorised_order_when_cancelled_then_authorisation_voided_on_the_ledger(
    fake_gateway, settings, support
):
    order = authorised_order(fake_gateway, price="10.50", stock=10)
    assert (order.status, order.payment_status) == ("processing", "authorized")

    cancelled = cancel_order(order_number=order.number, reason="out of stock", actor=support)

    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "voided")
    pi = intent_id(order)
    assert fake_gateway.intents[pi].status == "canceled"
    assert ledger_kinds(order) == [("authorization", 2600), ("void", 2600)]
    void = LedgerEntry.objects.get(kind="void")
    assert (void.external_id, void.source) == (f"{pi}:void", "shopkeeper")
    assert order_balance(order).capturable == 0
    assert AuditEntry.objects.get(action="order.cancelled").details["voided_minor"] == 2600


def test_given_cancelled_authorisation_when_stripe_webhook_follows_then_void_not_doubled(
    fake_gateway, settings, support
):
    order = authorised_order(fake_gateway, price="10.50", stock=10)
    cancel_order(order_number=order.number, reason="out of stock", actor=support)

    apply_intent(fake_gateway.intents[intent_id(order)], source="webhook")

    assert ledger_kinds(order) == [("authorization", 2600), ("void", 2600)]
    assert Order.objects.get(pk=order.pk).status == "cancelled"


@pytest.mark.parametrize("status", ["paid", "partially_refunded"])
def test_given_paid_order_when_cancelled_then_409_refund_first_and_nothing_changes(
    fake_gateway, settings, support, status
):
    order = paid_order(fake_gateway, price="10.50", stock=10)
    if status == "partially_refunded":
        requested_refund(order, actor=support, reason="duplicate", amount="5.00")
    calls = list(fake_gateway.calls)

    with pytest.raises(OrderPaidRefundFirst) as refusal:
        cancel_order(order_number=order.number, reason="please", actor=support)

    assert refusal.value.code == "order_paid_refund_first"
    assert Order.objects.get(pk=order.pk).payment_status == status
    assert Order.objects.get(pk=order.pk).status == "processing"
    assert fake_gateway.calls == calls
    assert stock() == 8
    assert not AuditEntry.objects.filter(action="order.cancelled").exists()


def test_given_order_refunded_in_full_with_nothing_pending_when_cancelled_then_cancelled(
    fake_gateway, settings, support
):
    order = paid_order(fake_gateway, price="10.50", stock=10)
    requested_refund(order, actor=support, reason="requested_by_customer", amount="26.00")
    assert Order.objects.get(pk=order.pk).payment_status == "refunded"
    calls = list(fake_gateway.calls)

    cancelled = cancel_order(order_number=order.number, reason="all refunded", actor=support)

    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "refunded")
    assert fake_gateway.calls == calls  # nothing left open at Stripe
    assert stock() == 10


def test_given_a_refund_still_pending_when_cancelled_then_409_refund_in_progress(
    fake_gateway, settings, support
):
    order = paid_order(fake_gateway, price="10.50", stock=10)
    fake_gateway.refund_status = "pending"
    requested_refund(order, actor=support, reason="requested_by_customer", amount="26.00")

    with pytest.raises(RefundInProgress) as refusal:
        cancel_order(order_number=order.number, reason="all refunded", actor=support)

    assert refusal.value.code == "refund_in_progress"
    assert Order.objects.get(pk=order.pk).status == "processing"


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_given_no_reason_when_cancelled_then_422_and_nothing_happens(
    fake_gateway, settings, support, reason
):
    order = new_order(fake_gateway, price="10.50", stock=10)
    calls = list(fake_gateway.calls)

    with pytest.raises(CancelReasonRequired) as refusal:
        cancel_order(order_number=order.number, reason=reason, actor=support)

    assert refusal.value.code == "reason_required"
    assert fake_gateway.calls == calls
    assert Order.objects.get(pk=order.pk).status == "pending"


def test_given_cancelled_order_when_cancelled_again_then_409_not_cancellable(
    fake_gateway, settings, support
):
    order = new_order(fake_gateway, price="10.50", stock=10)
    cancel_order(order_number=order.number, reason="first", actor=support)

    with pytest.raises(OrderNotCancellable):
        cancel_order(order_number=order.number, reason="second", actor=support)

    assert stock() == 10  # stock went back once
    assert AuditEntry.objects.filter(action="order.cancelled").count() == 1


def test_given_unknown_order_when_cancelled_then_not_found(support):
    with pytest.raises(OrderNotFound):
        cancel_order(order_number="SK-NOPE", reason="x", actor=support)


def test_given_stripe_outcome_unknown_when_cancelling_then_503_nothing_recorded_and_retry_works(
    fake_gateway, settings, support
):
    order = authorised_order(fake_gateway, price="10.50", stock=10)
    fake_gateway.lose_next_response.add("cancel_payment_intent")  # done at Stripe, answer lost

    with pytest.raises(PaymentOutcomeUnknown) as unknown:
        cancel_order(order_number=order.number, reason="out of stock", actor=support)

    assert unknown.value.code == "payment_outcome_unknown"
    unchanged = Order.objects.get(pk=order.pk)
    assert (unchanged.status, unchanged.payment_status) == ("processing", "authorized")
    assert ledger_kinds(order) == [("authorization", 2600)]
    assert stock() == 8
    assert not AuditEntry.objects.filter(action="order.cancelled").exists()

    cancelled = cancel_order(order_number=order.number, reason="out of stock", actor=support)

    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "voided")
    keys = cancel_calls(fake_gateway)
    assert len(keys) == 2 and keys[0] == keys[1]  # the retry reused the same key


def test_given_stripe_unreachable_when_cancelling_then_nothing_recorded(
    fake_gateway, settings, support
):
    order = new_order(fake_gateway, price="10.50", stock=10)
    fake_gateway.fail_next["cancel_payment_intent"] = [PaymentOutcomeUnknown("timeout")]

    with pytest.raises(PaymentOutcomeUnknown):
        cancel_order(order_number=order.number, reason="x", actor=support)

    assert Order.objects.get(pk=order.pk).status == "pending"
    assert fake_gateway.intents[intent_id(order)].status == "requires_payment_method"


def test_given_customer_paid_meanwhile_when_cancelled_then_payment_recorded_and_409(
    fake_gateway, settings, support
):
    order = new_order(fake_gateway, price="10.50", stock=10)
    fake_gateway.pay(intent_id(order))  # paid at Stripe; no webhook has arrived yet

    with pytest.raises(OrderPaidRefundFirst):
        cancel_order(order_number=order.number, reason="too late", actor=support)

    paid = Order.objects.get(pk=order.pk)
    assert (paid.status, paid.payment_status) == ("processing", "paid")
    assert order_balance(paid).captured == 2600
    assert stock() == 8
    assert not AuditEntry.objects.filter(action="order.cancelled").exists()


def test_given_authorised_at_stripe_but_not_yet_here_when_cancelled_then_voided_at_stripe(
    fake_gateway, settings, support
):
    order = new_order(fake_gateway, price="10.50", stock=10, capture="manual")
    fake_gateway.pay(intent_id(order))  # requires_capture at Stripe, still pending here

    cancelled = cancel_order(order_number=order.number, reason="x", actor=support)

    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "voided")
    assert fake_gateway.intents[intent_id(order)].status == "canceled"


def test_given_intent_already_cancelled_at_stripe_when_cancelled_then_order_cancelled(
    fake_gateway, settings, support
):
    order = new_order(fake_gateway, price="10.50", stock=10)
    fake_gateway.cancel_payment_intent(intent_id(order), idempotency_key="dashboard")

    cancelled = cancel_order(order_number=order.number, reason="x", actor=support)

    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "voided")


def test_given_some_units_already_restocked_when_cancelled_then_only_the_rest_returns(
    fake_gateway, settings, support
):
    order = new_order(fake_gateway, price="10.50", stock=10, items={"MUG": 3})
    line = order.lines.get()
    line.restocked_quantity = 1  # e.g. returned earlier by a restocking refund
    line.save()
    Product.objects.filter(sku="MUG").update(stock=8)

    cancel_order(order_number=order.number, reason="x", actor=support)

    assert stock() == 10
    assert order.lines.get().restocked_quantity == 3
