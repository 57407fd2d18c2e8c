"""Unpaid orders expire (orders.expiry, orders.jobs): after SHOPKEEPER_UNPAID_ORDER_TTL the
PaymentIntent is cancelled at Stripe, the order cancelled and its stock returned, once, under
the SYSTEM actor; paid, authorised and young orders stay; Stripe's silence changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.errors import (
    PaymentOutcomeUnknown,
    PaymentProviderUnavailable,
    PaymentRequestInvalid,
)
from shopkeeper.orders.expiry import Expiry, expire_unpaid_order, orders_due_to_expire
from shopkeeper.orders.jobs import expire_unpaid_orders
from shopkeeper.orders.models import Order
from shopkeeper.orders.rules import OrderNotCancellable
from shopkeeper.orders.services import cancel_order
from shopkeeper.payments.models import Payment
from shopkeeper.stripe_events.job_lock import processing_lock
from tests.factories import authorised_order, new_order, paid_order, staff
from tests.fakes import GatewayInBetween, intent_event_payload
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db

TTL = timedelta(minutes=60)


@pytest.fixture(autouse=True)
def ttl(settings):
    settings.SHOPKEEPER_UNPAID_ORDER_TTL = TTL


def aged(order: Order, age: timedelta) -> Order:
    """The order as if it had been placed `age` ago."""
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - age)
    return Order.objects.get(pk=order.pk)


def stock(sku: str = "MUG") -> int:
    return Product.objects.get(sku=sku).stock


def intent_of(order: Order) -> str:
    return Payment.objects.filter(order=order).latest("id").intent_id


def test_given_an_order_unpaid_past_the_ttl_when_the_worker_runs_then_it_expires(fake_gateway):
    order = aged(new_order(fake_gateway, stock=5), TTL + timedelta(seconds=1))
    assert stock() == 3

    assert expire_unpaid_orders(timestamp=0) == 1
    runs = run_jobs()

    assert [(run.task_name, run.outcome) for run in runs] == [
        ("orders.expire_unpaid_order", "succeeded")
    ]
    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("cancelled", "voided")
    assert order.cancel_reason == "expired: unpaid after 1h"
    assert fake_gateway.intents[intent_of(order)].status == "canceled"
    assert Payment.objects.get(order=order).intent_status == "canceled"
    assert stock() == 5
    entry = AuditEntry.objects.get(action="order.expired", target_id=order.number)
    assert entry.actor_id is None and entry.actor_email == "Shopkeeper"
    assert entry.after == {"status": "cancelled", "payment_status": "voided"}
    assert entry.details["reason"] == "expired: unpaid after 1h"
    assert entry.details["restocked"] == {"MUG": 2}
    assert entry.details["payment_intents_cancelled"] == [intent_of(order)]


def test_given_an_order_younger_than_the_ttl_then_it_stays(fake_gateway):
    order = aged(new_order(fake_gateway), TTL - timedelta(seconds=30))

    assert orders_due_to_expire() == []
    assert expire_unpaid_orders(timestamp=0) == 0
    assert expire_unpaid_order(order_number=order.number) == Expiry.NOT_DUE

    order.refresh_from_db()
    assert order.status == "pending"
    assert ("cancel_payment_intent", f"order-{order.number}-expire-{intent_of(order)}") not in (
        fake_gateway.calls
    )


def test_given_a_declined_attempt_past_the_ttl_then_it_expires_too(fake_gateway):
    order = aged(new_order(fake_gateway, decline=True), TTL * 2)
    assert order.payment_status == "failed"

    assert expire_unpaid_order(order_number=order.number) == Expiry.EXPIRED
    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("cancelled", "voided")


@pytest.mark.parametrize("place", [paid_order, authorised_order], ids=["paid", "authorised"])
def test_given_a_paid_or_authorised_order_then_it_never_expires(fake_gateway, place):
    order = aged(place(fake_gateway), TTL * 100)

    assert orders_due_to_expire() == []
    assert expire_unpaid_order(order_number=order.number) == Expiry.NOT_DUE

    order.refresh_from_db()
    assert order.status == "processing"
    assert not AuditEntry.objects.filter(action="order.expired").exists()


def test_given_an_expired_order_then_its_stock_is_returned_exactly_once(fake_gateway):
    order = aged(new_order(fake_gateway, stock=5), TTL * 2)

    assert expire_unpaid_order(order_number=order.number) == Expiry.EXPIRED
    assert expire_unpaid_order(order_number=order.number) == Expiry.NOT_DUE
    with pytest.raises(OrderNotCancellable):
        cancel_order(order_number=order.number, reason="again", actor=staff("manager"))

    assert stock() == 5
    assert AuditEntry.objects.filter(action="order.expired").count() == 1
    assert [op for op, _ in fake_gateway.calls].count("cancel_payment_intent") == 1


@pytest.mark.parametrize(
    "error",
    [PaymentProviderUnavailable("Stripe is down"), PaymentOutcomeUnknown("timed out")],
    ids=["down", "timeout"],
)
def test_given_stripe_fails_then_the_order_stays_pending_until_the_next_run(fake_gateway, error):
    order = aged(new_order(fake_gateway, stock=5), TTL * 2)
    fake_gateway.fail_next["cancel_payment_intent"] = [error]

    assert expire_unpaid_order(order_number=order.number) == Expiry.RETRY

    order.refresh_from_db()
    assert (order.status, order.payment_status, order.cancel_reason) == ("pending", "pending", "")
    assert stock() == 3
    assert not AuditEntry.objects.filter(action="order.expired").exists()

    # The next run sends the same key again, and Stripe's answer is recorded.
    assert expire_unpaid_order(order_number=order.number) == Expiry.EXPIRED
    order.refresh_from_db()
    assert order.status == "cancelled" and stock() == 5
    keys = {key for op, key in fake_gateway.calls if op == "cancel_payment_intent"}
    assert keys == {f"order-{order.number}-expire-{intent_of(order)}"}


def test_given_stripe_loses_the_cancels_answer_then_the_retry_cancels_once(fake_gateway):
    order = aged(new_order(fake_gateway), TTL * 2)
    fake_gateway.lose_next_response.add("cancel_payment_intent")

    assert expire_unpaid_order(order_number=order.number) == Expiry.RETRY
    assert Order.objects.get(pk=order.pk).status == "pending"
    assert expire_unpaid_order(order_number=order.number) == Expiry.EXPIRED
    assert Order.objects.get(pk=order.pk).status == "cancelled"


@pytest.mark.parametrize(
    ("capture", "status", "payment_status"),
    [("automatic", "succeeded", "paid"), ("manual", "requires_capture", "authorized")],
)
def test_given_the_customer_paid_at_the_last_second_then_the_order_is_kept_and_recorded(
    fake_gateway, capture, status, payment_status
):
    """Paid at Stripe, its webhook not processed yet: the expiry records the payment as the
    webhook would, cancels nothing (not even an authorisation), and returns no stock."""
    order = aged(new_order(fake_gateway, stock=5, capture=capture), TTL * 2)
    fake_gateway.pay(intent_of(order))

    assert expire_unpaid_order(order_number=order.number) == Expiry.PAID

    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("processing", payment_status)
    assert fake_gateway.intents[intent_of(order)].status == status
    assert stock() == 3
    assert not order.operation  # the claim is released
    assert not AuditEntry.objects.filter(action="order.expired").exists()


def test_given_stripe_refuses_the_cancel_because_it_was_just_paid_then_it_is_kept(fake_gateway):
    """Paid between our read of the PaymentIntent and our cancel: Stripe refuses the cancel."""
    order = aged(new_order(fake_gateway, stock=5), TTL * 2)
    pay_first = fake_gateway.cancel_payment_intent

    def paid_just_before(intent_id: str, *, idempotency_key: str):
        fake_gateway.pay(intent_id)
        return pay_first(intent_id, idempotency_key=idempotency_key)

    fake_gateway.cancel_payment_intent = paid_just_before  # type: ignore[method-assign]

    assert expire_unpaid_order(order_number=order.number) == Expiry.PAID
    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("processing", "paid")
    assert stock() == 3


def test_given_a_payment_in_flight_with_staff_then_the_run_waits(fake_gateway):
    order = aged(new_order(fake_gateway), TTL * 2)
    Order.objects.filter(pk=order.pk).update(
        operation="cancel", operation_key="someone-else", operation_started_at=timezone.now()
    )

    assert expire_unpaid_order(order_number=order.number) == Expiry.RETRY
    assert Order.objects.get(pk=order.pk).status == "pending"


def test_the_expiry_job_holds_the_lock_of_the_webhooks_of_its_payment(fake_gateway):
    """One lock for the expiry of an order and the processing of its PaymentIntent's events."""
    order = aged(new_order(fake_gateway), TTL * 2)
    intent = fake_gateway.intents[intent_of(order)]

    expire_unpaid_orders(timestamp=0)
    expire_unpaid_orders(timestamp=30)  # the next tick: its job is still queued, no second one

    (job,) = ProcrastinateJob.objects.filter(task_name="orders.expire_unpaid_order")
    webhook = json.loads(intent_event_payload(intent, "payment_intent.succeeded"))
    assert job.lock == processing_lock(webhook) == f"stripe:{intent.id}"
    assert job.queueing_lock == f"expire:{order.number}"


def test_given_a_payment_intent_stripe_does_not_know_then_the_order_expires_anyway(fake_gateway):
    """Nobody can pay a PaymentIntent Stripe does not know (`seed --orders` rows name such
    ids): the order expires without a cancel at Stripe, and the entry says so."""
    order = aged(new_order(fake_gateway, stock=5), TTL * 2)
    intent_id = intent_of(order)
    del fake_gateway.intents[intent_id]

    assert expire_unpaid_order(order_number=order.number) == Expiry.EXPIRED

    order.refresh_from_db()
    assert order.status == "cancelled" and stock() == 5
    entry = AuditEntry.objects.get(action="order.expired")
    assert entry.details["unknown_at_stripe"] == [intent_id]
    assert entry.details["payment_intents_cancelled"] == []


def test_given_another_error_reading_the_payment_intent_then_nothing_changes(fake_gateway):
    order = aged(new_order(fake_gateway, stock=5), TTL * 2)

    class RefusesReads(GatewayInBetween):
        def retrieve_payment_intent(self, intent_id: str):
            raise PaymentRequestInvalid("Invalid API key", http_status=401)

    with pytest.raises(PaymentRequestInvalid):
        expire_unpaid_order(order_number=order.number, gateway=RefusesReads(fake_gateway))

    order.refresh_from_db()
    assert order.status == "pending" and not order.operation and stock() == 3


def test_finding_the_orders_due_is_one_statement_however_many(
    fake_gateway, django_assert_num_queries
):
    orders = [aged(new_order(fake_gateway), TTL * 2) for _ in range(3)]
    aged(new_order(fake_gateway), TTL / 2)  # too young
    paid = aged(paid_order(fake_gateway), TTL * 2)

    with django_assert_num_queries(1):
        due = orders_due_to_expire()

    assert [d.number for d in due] == [o.number for o in orders]  # oldest first
    assert [d.intent_id for d in due] == [intent_of(o) for o in orders]
    assert paid.number not in {d.number for d in due}


@pytest.mark.periodic_ticks
def test_both_orders_jobs_are_on_the_workers_schedule_every_30_seconds():
    from procrastinate.contrib.django import app

    crons = {
        name: periodic.cron for (name, _), periodic in app.periodic_registry.periodic_tasks.items()
    }
    assert crons["orders.expire_unpaid_orders"] == "* * * * * */30"
    assert crons["orders.give_back_late_payments"] == "* * * * * */30"
