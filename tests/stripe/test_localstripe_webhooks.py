"""Charge, refund and dispute webhooks against a real localstripe.

localstripe sends no `charge.*` or `refund.*` events and has no disputes at all, so these tests
take the real objects from localstripe (its charge, with its refunds list, and its refunds),
wrap them in Stripe's event envelope and sign them with the webhook secret, as Stripe would. A
dispute is built in Stripe's shape around localstripe's real charge and PaymentIntent ids.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from shopkeeper.disputes.models import Dispute
from shopkeeper.orders.models import Order
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.payments.gateway import DisputeSnapshot
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import paid_order, staff, token_for
from tests.fakes import dispute_event_payload, event_payload, sign_payload
from tests.integration.refund_fixtures import Api, refunded_minor
from tests.integration.webhook_fixtures import deliver
from tests.jobs import run_jobs

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db]


def signed_delivery(obj: dict, event_type: str, event_id: str) -> str:
    payload = event_payload(obj, event_type, event_id)
    response = deliver(payload, sign_payload(payload, secret=settings.STRIPE_WEBHOOK_SECRET))
    assert response.status_code == 200, response.content
    if response.json()["status"] == "duplicate":
        return "duplicate"
    run_jobs()  # the worker
    return str(WebhookEvent.objects.get(event_id=event_id).status)


def charge_of(dashboard, order: Order) -> dict:
    intent = dashboard.v1.payment_intents.retrieve(order.payments.get().intent_id).to_dict()
    charge_id = intent["charges"]["data"][-1]["id"]
    return dashboard.v1.charges.retrieve(charge_id).to_dict()


def ledger_equals_stripe(gateway, order: Order) -> None:
    at_stripe = sorted(
        (r.id, r.amount)
        for r in gateway.list_refunds(order.payments.get().intent_id)
        if r.status == "succeeded"
    )
    ours = sorted(
        LedgerEntry.objects.filter(order=order, kind="refund").values_list(
            "external_id", "amount_minor"
        )
    )
    assert ours == at_stripe


def test_given_dashboard_refund_when_charge_refunded_arrives_then_recorded_like_stripe(
    localstripe_gateway, dashboard
):
    order = paid_order(localstripe_gateway)
    made = dashboard.v1.refunds.create(
        params={"payment_intent": order.payments.get().intent_id, "amount": 1000}
    )
    charge = charge_of(dashboard, order)
    assert [r["id"] for r in charge["refunds"]["data"]] == [made.id]

    assert signed_delivery(charge, "charge.refunded", f"evt_{charge['id']}_1") == "processed"

    refund = Refund.objects.get(order=order)
    assert (refund.source, refund.status, refund.stripe_refund_id) == (
        "stripe",
        "succeeded",
        made.id,
    )
    ledger_equals_stripe(localstripe_gateway, order)
    assert Order.objects.get(pk=order.pk).payment_status == "partially_refunded"


def test_given_todays_charge_payload_without_refunds_then_they_are_read_from_stripe(
    localstripe_gateway, dashboard
):
    order = paid_order(localstripe_gateway)
    intent_id = order.payments.get().intent_id
    for amount in (700, 1800):
        dashboard.v1.refunds.create(params={"payment_intent": intent_id, "amount": amount})
    charge = charge_of(dashboard, order)
    charge.pop("refunds")  # Stripe's payloads stopped listing them in API 2022-11-15

    signed_delivery(charge, "charge.refunded", f"evt_{charge['id']}_2")

    assert Refund.objects.filter(order=order, source="stripe").count() == 2
    ledger_equals_stripe(localstripe_gateway, order)
    assert refunded_minor(order) == 2500
    assert Order.objects.get(pk=order.pk).payment_status == "refunded"


def test_given_our_refund_and_a_dashboard_refund_when_events_arrive_then_each_recorded_once(
    localstripe_gateway, dashboard
):
    order = paid_order(localstripe_gateway)
    api = Api(token_for(staff("manager")))
    assert api.refund(order.number, {"amount": "5.00", "reason": "other"}).status_code == 201
    made = dashboard.v1.refunds.create(
        params={"payment_intent": order.payments.get().intent_id, "amount": 300}
    ).to_dict()

    signed_delivery(made, "refund.created", f"evt_{made['id']}")
    charge = charge_of(dashboard, order)
    signed_delivery(charge, "charge.refunded", f"evt_{charge['id']}_3")
    signed_delivery(charge, "charge.refunded", f"evt_{charge['id']}_4")

    sources = sorted(Refund.objects.filter(order=order).values_list("source", "amount_minor"))
    assert sources == [("shopkeeper", 500), ("stripe", 300)]
    ledger_equals_stripe(localstripe_gateway, order)


def test_given_dispute_of_a_localstripe_charge_then_refunds_of_it_are_refused_before_stripe(
    localstripe_gateway, dashboard
):
    """localstripe would accept a refund of disputed money (Stripe answers `charge_disputed`):
    our own balance refuses it, and localstripe never sees the request."""
    order = paid_order(localstripe_gateway)
    charge = charge_of(dashboard, order)
    dispute = DisputeSnapshot(
        id="du_localstripe_1",
        status="needs_response",
        amount=2500,
        currency="USD",
        charge_id=charge["id"],
        payment_intent_id=order.payments.get().intent_id,
        reason="fraudulent",
    )
    payload = dispute_event_payload(dispute, "charge.dispute.created")
    response = deliver(payload, sign_payload(payload, secret=settings.STRIPE_WEBHOOK_SECRET))
    assert response.status_code == 200
    run_jobs()  # the worker

    refused = Api(token_for(staff("manager"))).refund(
        order.number, {"amount": "1.00", "reason": "other"}
    )

    assert refused.status_code == 409 and refused.json()["code"] == "refund_exceeds_refundable"
    assert localstripe_gateway.list_refunds(order.payments.get().intent_id) == []
    assert Dispute.objects.get().stripe_charge_id == charge["id"]
    assert order_detail(Order.objects.get(pk=order.pk))["disputed"] is True
