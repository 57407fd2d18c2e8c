"""A payment that arrives for an expired (or cancelled) order is given back automatically: the
webhook records it and flags the order `paid_after_cancel`; the worker voids an authorisation
or refunds a capture in full, once, and resolves the flag. The order stays cancelled: its stock
went back when it expired."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.orders.expiry import Expiry, expire_unpaid_order
from shopkeeper.orders.jobs import give_back_late_payments
from shopkeeper.orders.late_payments import GiveBack, give_back_late_payment
from shopkeeper.orders.models import Attention, Order
from shopkeeper.orders.services import cancel_order
from shopkeeper.payments.models import Payment
from shopkeeper.payments.services import record_payment_intent
from shopkeeper.refunds.late_payments import late_payment_refund_key
from shopkeeper.refunds.models import Refund
from shopkeeper.stripe_events.receiving import receive_event
from tests.factories import new_order, staff
from tests.fakes import FakeGateway, intent_event_payload
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db

TTL = timedelta(minutes=60)


@pytest.fixture(autouse=True)
def ttl(settings):
    settings.SHOPKEEPER_UNPAID_ORDER_TTL = TTL


def expired_order(gateway: FakeGateway, *, capture: str = "automatic") -> Order:
    order = new_order(gateway, stock=5, capture=capture)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - TTL * 2)
    assert expire_unpaid_order(order_number=order.number) == Expiry.EXPIRED
    return Order.objects.get(pk=order.pk)


def paid_by_a_late_retry(gateway: FakeGateway, order: Order, event_type: str) -> str:
    """The customer's retry opened a second PaymentIntent, recorded after the order was
    cancelled, and paid it; Stripe's webhook is received and processed by the worker."""
    intent = gateway.create_payment_intent(
        amount=order.grand_total,
        order_number=order.number,
        capture_method=Payment.objects.filter(order=order).first().capture_method,
        idempotency_key=f"order-{order.number}-payment-intent-2",
    )
    record_payment_intent(order=order, intent=intent)
    paid = gateway.pay(intent.id)
    receive_event(gateway.event_from_payload(json.loads(intent_event_payload(paid, event_type))))
    assert {run.outcome for run in run_jobs()} == {"succeeded"}
    return intent.id


def open_flags(order: Order) -> list[tuple[str, str]]:
    return list(
        Attention.objects.filter(order=order, resolved_at__isnull=True).values_list(
            "code", "subject"
        )
    )


def test_given_an_expired_order_paid_late_then_it_is_flagged_and_refunded_once(fake_gateway):
    order = expired_order(fake_gateway)
    intent_id = paid_by_a_late_retry(fake_gateway, order, "payment_intent.succeeded")

    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("cancelled", "paid")
    assert order.needs_attention and open_flags(order) == [("paid_after_cancel", intent_id)]

    assert give_back_late_payments(timestamp=0) == 1
    assert {run.outcome for run in run_jobs()} == {"succeeded"}

    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("cancelled", "refunded")
    refund = Refund.objects.get(order=order)
    assert refund.key == late_payment_refund_key(intent_id)
    assert (refund.status, refund.amount_minor) == ("succeeded", order.grand_total_minor)
    assert refund.payment.intent_id == intent_id and refund.requested_by is None
    assert open_flags(order) == [] and not order.needs_attention
    returned = AuditEntry.objects.get(action="order.late_payment_returned")
    assert returned.actor_email == "Shopkeeper" and returned.details["how"] == "refunded"
    assert Product.objects.get(sku="MUG").stock == 5  # returned once, at the expiry

    # Later runs find nothing to give back; asked directly, nothing is sent again.
    assert give_back_late_payments(timestamp=30) == 0
    assert give_back_late_payment(order_number=order.number, intent_id=intent_id) == (
        GiveBack.NOTHING
    )
    assert [op for op, _ in fake_gateway.calls].count("create_refund") == 1


def test_given_an_expired_order_authorised_late_then_the_authorisation_is_voided(fake_gateway):
    order = expired_order(fake_gateway, capture="manual")
    intent_id = paid_by_a_late_retry(
        fake_gateway, order, "payment_intent.amount_capturable_updated"
    )
    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("cancelled", "authorized")
    assert open_flags(order) == [("paid_after_cancel", intent_id)]

    give_back_late_payments(timestamp=0)
    run_jobs()

    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("cancelled", "voided")
    assert fake_gateway.intents[intent_id].status == "canceled"
    assert ("cancel_payment_intent", f"late-payment-{intent_id}-void") in fake_gateway.calls
    assert not Refund.objects.filter(order=order).exists()
    assert open_flags(order) == []
    assert AuditEntry.objects.get(action="order.late_payment_returned").details["how"] == "voided"


def test_given_a_refund_stripe_leaves_unknown_then_it_is_sent_again_with_the_same_key(
    fake_gateway,
):
    order = expired_order(fake_gateway)
    intent_id = paid_by_a_late_retry(fake_gateway, order, "payment_intent.succeeded")
    fake_gateway.lose_next_response.add("create_refund")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.conf.settings.SHOPKEEPER_REFUND_RETRY_DELAYS", [])
        assert give_back_late_payment(order_number=order.number, intent_id=intent_id) == (
            GiveBack.PENDING
        )
    assert open_flags(order) == [("paid_after_cancel", intent_id)]

    # Minutes later: the refund's own settlement job sends it again, then the next run looks.
    Refund.objects.update(last_sent_at=timezone.now() - timedelta(minutes=10))
    run_jobs(seconds_later=120)
    give_back_late_payments(timestamp=0)
    run_jobs()

    refund = Refund.objects.get(order=order)
    assert refund.status == "succeeded"
    assert {key for op, key in fake_gateway.calls if op == "create_refund"} == {
        refund.idempotency_key
    }
    assert open_flags(order) == []
    assert Order.objects.get(pk=order.pk).payment_status == "refunded"


def test_given_an_order_staff_cancelled_paid_late_then_the_same_rule_applies(fake_gateway):
    order = new_order(fake_gateway)
    cancel_order(order_number=order.number, reason="customer asked", actor=staff("manager"))
    intent_id = paid_by_a_late_retry(fake_gateway, order, "payment_intent.succeeded")

    give_back_late_payments(timestamp=0)
    run_jobs()

    refund = Refund.objects.get(order=order)
    assert refund.status == "succeeded" and refund.payment.intent_id == intent_id
    assert Order.objects.get(pk=order.pk).payment_status == "refunded"
