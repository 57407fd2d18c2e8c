"""Refund news from Stripe webhooks: settles pending refunds, records late failures and refunds
made outside Shopkeeper, and never records the same money twice."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.test import Client

from shopkeeper.orders.models import Order
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.payments.gateway import RefundSnapshot
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import paid_order, requested_refund
from tests.fakes import AlwaysLost, GatewayInBetween, refund_event_payload, sign_payload
from tests.integration.refund_fixtures import refunded_minor
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db


def deliver(snapshot: RefundSnapshot, event_type: str = "refund.updated", event_id=None):
    """Stripe's POST, then the worker runs what it deferred."""
    payload = refund_event_payload(snapshot, event_type, event_id)
    response = Client().post(
        "/webhooks/stripe",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(payload),
    )
    run_jobs()
    return response


def payment_status(order) -> str:
    return Order.objects.get(pk=order.pk).payment_status


def pending_refund(fake_gateway, manager, amount="10.00"):
    fake_gateway.refund_status = "pending"
    order = paid_order(fake_gateway)
    refund = requested_refund(order, actor=manager, amount=amount, reason="other")
    assert refund.status == "pending" and refund.stripe_refund_id
    return order, refund


def test_given_pending_refund_when_succeeded_event_then_settled_once(fake_gateway, manager):
    order, refund = pending_refund(fake_gateway, manager)
    settled = fake_gateway.settle_refund(refund.stripe_refund_id, "succeeded")

    first = deliver(settled, event_id="evt_1")
    again = deliver(settled, event_id="evt_1")
    other_delivery = deliver(settled, event_id="evt_2")

    assert first.status_code == again.status_code == other_delivery.status_code == 200
    assert again.json()["status"] == "duplicate"
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.settled_at is not None
    assert LedgerEntry.objects.filter(order=order, kind="refund").count() == 1
    assert refunded_minor(order) == 1000 and payment_status(order) == "partially_refunded"
    assert WebhookEvent.objects.get(event_id="evt_1").status == "processed"


def test_given_pending_refund_when_failed_event_then_failed_with_reason_and_released(
    fake_gateway, manager
):
    order, refund = pending_refund(fake_gateway, manager)
    failed = fake_gateway.settle_refund(refund.stripe_refund_id, "failed", "lost_or_stolen_card")

    assert deliver(failed, "refund.failed").status_code == 200

    refund.refresh_from_db()
    assert refund.status == "failed" and "lost or stolen" in refund.failure_message
    assert refunded_minor(order) == 0 and payment_status(order) == "paid"
    assert order_detail(Order.objects.get(pk=order.pk))["refundable_minor"] == 2500


def test_given_succeeded_refund_when_it_fails_later_then_reversal_and_money_refundable_again(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    refund = requested_refund(order, actor=manager, reason="other")
    assert payment_status(order) == "refunded"
    failed = fake_gateway.settle_refund(
        refund.stripe_refund_id, "failed", "expired_or_canceled_card"
    )

    deliver(failed, "refund.failed")
    deliver(failed, "refund.updated")  # the same news twice, under another event

    refund.refresh_from_db()
    assert refund.status == "failed"
    kinds = sorted(LedgerEntry.objects.filter(order=order).values_list("kind", flat=True))
    assert kinds.count("refund_reversal") == 1
    assert refunded_minor(order) == 0 and payment_status(order) == "paid"
    assert order_detail(Order.objects.get(pk=order.pk))["refundable_minor"] == 2500


def test_given_settled_refund_when_stale_pending_event_then_nothing_changes(fake_gateway, manager):
    order = paid_order(fake_gateway)
    refund = requested_refund(order, actor=manager, amount="5.00", reason="other")
    stale = replace(fake_gateway.refunds[refund.stripe_refund_id], status="pending")

    assert deliver(stale, "refund.created").status_code == 200

    refund.refresh_from_db()
    assert refund.status == "succeeded" and refunded_minor(order) == 500


def test_given_unanswered_refund_when_event_names_its_key_then_matched_and_settled(
    fake_gateway, manager
):
    """Our request never got Stripe's answer; the webhook's metadata finds the row."""
    order = paid_order(fake_gateway)
    refund = requested_refund(
        order,
        actor=manager,
        amount="4.00",
        reason="other",
        gateway=AlwaysLost(fake_gateway),
    )
    assert refund.status == "pending" and not refund.stripe_refund_id
    (made,) = fake_gateway.refunds.values()

    deliver(made, "refund.created")

    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.stripe_refund_id == made.id
    assert refunded_minor(order) == 400


def test_given_webhook_overtakes_our_answer_then_the_money_is_recorded_once(fake_gateway, manager):
    order = paid_order(fake_gateway)

    refund = requested_refund(
        order,
        actor=manager,
        amount="6.00",
        reason="other",
        gateway=WebhookFirst(fake_gateway),
    )

    assert refund.status == "succeeded"
    assert LedgerEntry.objects.filter(order=order, kind="refund").count() == 1
    assert refunded_minor(order) == 600


def test_given_refund_made_in_stripe_dashboard_then_recorded_with_ledger_row(fake_gateway, manager):
    order = paid_order(fake_gateway)
    intent_id = order.payments.get().intent_id
    outside = fake_gateway.refund_outside(intent_id, 1500)

    deliver(outside, "refund.created")
    deliver(outside, "refund.updated")

    refund = Refund.objects.get(order=order)
    assert (refund.source, refund.status, refund.amount_minor) == ("stripe", "succeeded", 1500)
    assert refund.requested_by is None and refund.stripe_refund_id == outside.id
    assert refunded_minor(order) == 1500 and payment_status(order) == "partially_refunded"
    detail = order_detail(Order.objects.get(pk=order.pk))
    assert detail["refundable_minor"] == 1000 and detail["refunds"][0]["source"] == "stripe"


def test_given_refund_of_unknown_payment_then_ignored_with_200(fake_gateway):
    stranger = RefundSnapshot(
        id="re_x", status="succeeded", amount=100, currency="USD", payment_intent_id="pi_x"
    )
    response = deliver(stranger)
    assert response.status_code == 200
    assert not Refund.objects.exists() and not LedgerEntry.objects.exists()


class WebhookFirst(GatewayInBetween):
    """Stripe's `refund.updated` webhook is processed before our request gets its answer."""

    def create_refund(self, **kwargs):
        snapshot = self._gateway.create_refund(**kwargs)
        assert deliver(snapshot, "refund.updated").status_code == 200
        assert Refund.objects.get(stripe_refund_id=snapshot.id).status == "succeeded"
        return snapshot
