"""PostgreSQL, several connections: the real worker expires an unpaid order, and an expiry
racing the customer's payment (and its webhook) on one PaymentIntent ends in one consistent
state, never a mix: cancelled with its stock back and nothing taken, or paid and kept."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.errors import PaymentRequestInvalid
from shopkeeper.jobs.defer import defer_in_transaction
from shopkeeper.orders.expiry import Expiry, expire_unpaid_order
from shopkeeper.orders.jobs import expire_unpaid_orders
from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.stripe_events.processing import process_stored_event
from shopkeeper.stripe_events.receiving import receive_event
from tests.factories import new_order
from tests.fakes import FakeGateway, intent_event_payload
from tests.racing import race

pytestmark = pytest.mark.django_db(transaction=True)

TTL = timedelta(minutes=60)


@pytest.fixture(autouse=True)
def ttl(settings):
    settings.SHOPKEEPER_UNPAID_ORDER_TTL = TTL


def aged_order(gateway: FakeGateway, sku: str = "MUG") -> Order:
    order = new_order(gateway, items={sku: 2}, stock=5)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - TTL * 2)
    return Order.objects.get(pk=order.pk)


def test_the_worker_expires_an_unpaid_order(fake_gateway, background_worker):
    order = aged_order(fake_gateway)
    with transaction.atomic():  # what procrastinate's periodic deferrer does at each tick
        defer_in_transaction(expire_unpaid_orders, timestamp=int(time.time()))

    deadline = time.monotonic() + 30
    while Order.objects.get(pk=order.pk).status != "cancelled":
        assert time.monotonic() < deadline, "the worker did not expire the order"
        time.sleep(0.1)

    assert Product.objects.get(sku="MUG").stock == 5
    assert AuditEntry.objects.filter(action="order.expired", target_id=order.number).count() == 1


def customer_pays_and_stripe_tells_us(gateway: Any, intent_id: str) -> str:
    try:
        paid = gateway.confirm_payment_intent(
            intent_id, payment_method="pm_card_visa", idempotency_key=f"confirm-{intent_id}"
        )
    except PaymentRequestInvalid:
        return "refused"  # the expiry cancelled it first
    event = gateway.event_from_payload(
        json.loads(intent_event_payload(paid, "payment_intent.succeeded"))
    )
    receive_event(event)
    process_stored_event(event.id, tries=1)
    return "paid"


@pytest.mark.parametrize("round_", range(4))
def test_an_expiry_racing_the_payments_webhook_ends_in_one_state(fake_gateway, round_):
    sku = f"RACE{round_}"
    order = aged_order(fake_gateway, sku=sku)
    intent_id = Payment.objects.get(order=order).intent_id

    expiry, payment = race(
        2,
        lambda i: (
            expire_unpaid_order(order_number=order.number)
            if i == 0
            else customer_pays_and_stripe_tells_us(fake_gateway, intent_id)
        ),
    )

    assert not isinstance(expiry, BaseException) and not isinstance(payment, BaseException)
    order.refresh_from_db()
    captured = LedgerEntry.objects.filter(order=order, kind="capture").count()
    stock = Product.objects.get(sku=sku).stock
    if payment == "refused":
        assert expiry == Expiry.EXPIRED
        assert (order.status, order.payment_status, captured, stock) == (
            "cancelled",
            "voided",
            0,
            5,
        )
    else:
        assert expiry in (Expiry.PAID, Expiry.NOT_DUE)
        assert (order.status, order.payment_status, captured, stock) == (
            "processing",
            "paid",
            1,
            3,
        )
    assert not order.operation and not order.needs_attention
