"""Capture on fulfilment (issue 11, SHOPKEEPER_CAPTURE=on_fulfillment): checkout authorises, a
partial shipment captures nothing, the last shipment's job captures what shipped plus shipping,
retries while Stripe is unavailable and flags the order when it gives up or Stripe refuses, a
lapsed or voided authorisation refuses the shipment, and the mode stays the order's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from shopkeeper.audit.models import AuditEntry
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.fulfilment.jobs import CAPTURE_RETRY_DELAYS
from shopkeeper.fulfilment.models import Shipment
from shopkeeper.orders.capture import capture_order
from shopkeeper.orders.models import Attention, Order
from shopkeeper.payments.models import LedgerEntry, Payment
from tests.factories import new_order, staff
from tests.integration.orders_admin_fixtures import api_as
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db

TWO_LINES = {"MUG": 2, "CAP": 1}  # 10.00 each, shipping 5.00: 35.00 in all
CAPTURE_JOB = "fulfilment.capture_fulfilled_order"


@pytest.fixture
def owner():
    return api_as("owner")


def on_fulfilment_order(gateway, items=TWO_LINES) -> Order:
    order = new_order(gateway, items=items, capture="on_fulfillment", pay=True)
    assert order.payment_status == "authorized", order.payment_status
    return order


def ship(api, number, lines=None):
    body = {"carrier": "DHL", "tracking_number": "JD0001"}
    if lines is not None:
        body["lines"] = [{"sku": sku, "quantity": quantity} for sku, quantity in lines.items()]
    return api.post(f"/orders/{number}/shipments", body)


def captures(gateway) -> list[str]:
    return [key for operation, key in gateway.calls if operation == "capture_payment_intent"]


def movements(order: Order) -> list[tuple[str, int]]:
    return list(
        LedgerEntry.objects.filter(order=order).order_by("id").values_list("kind", "amount_minor")
    )


def capture_runs(**kwargs) -> list[str]:
    return [run.outcome for run in run_jobs(**kwargs) if run.task_name == CAPTURE_JOB]


def test_given_on_fulfillment_when_the_customer_pays_then_the_card_is_only_authorised(
    fake_gateway,
):
    order = on_fulfilment_order(fake_gateway)

    payment = Payment.objects.get(order=order)
    assert payment.capture_on_fulfillment is True
    assert payment.capture_method == "manual"
    assert fake_gateway.intents[payment.intent_id].capture_method == "manual"
    assert fake_gateway.intents[payment.intent_id].status == "requires_capture"
    assert captures(fake_gateway) == []


def test_given_a_partial_shipment_then_nothing_is_captured(fake_gateway, owner):
    order = on_fulfilment_order(fake_gateway)

    response = ship(owner, order.number, {"MUG": 1})

    assert response.status_code == 201, response.content
    assert capture_runs() == []
    assert captures(fake_gateway) == []
    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("processing", "authorized")


def test_given_the_last_shipment_then_the_job_captures_shipped_plus_shipping_and_closes(
    fake_gateway, owner
):
    order = on_fulfilment_order(fake_gateway)
    ship(owner, order.number, {"MUG": 1})

    response = ship(owner, order.number)  # the rest: 1 MUG, 1 CAP

    assert response.status_code == 201, response.content
    assert captures(fake_gateway) == []  # not in the request: in the job
    assert capture_runs() == ["succeeded"]
    payment = Payment.objects.get(order=order)
    assert fake_gateway.intents[payment.intent_id].amount_received == 3500
    assert movements(order) == [("authorization", 3500), ("capture", 3500)]  # nothing left over
    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("closed", "paid")
    captured = AuditEntry.objects.get(action="order.captured")
    assert captured.actor_id is None and captured.details["amount_minor"] == 3500


def test_given_stripe_unavailable_then_the_job_retries_later_with_the_same_key(fake_gateway, owner):
    order = on_fulfilment_order(fake_gateway)
    fake_gateway.fail_next["capture_payment_intent"] = [PaymentOutcomeUnknown("timed out")]
    ship(owner, order.number)

    assert capture_runs() == ["succeeded"]  # the first try schedules the second
    assert capture_runs() == []  # not due yet
    assert capture_runs(seconds_later=CAPTURE_RETRY_DELAYS[0]) == ["succeeded"]

    first, second = captures(fake_gateway)
    assert first == second  # one capture at Stripe, whatever the tries
    order.refresh_from_db()
    assert order.payment_status == "paid" and not order.needs_attention


def test_given_stripe_captured_but_its_answer_was_lost_then_the_retry_records_it_once(
    fake_gateway, owner
):
    order = on_fulfilment_order(fake_gateway)
    fake_gateway.lose_next_response.add("capture_payment_intent")
    ship(owner, order.number)

    assert capture_runs() == ["succeeded"]  # Stripe took the money; we do not know yet
    order.refresh_from_db()
    assert order.payment_status == "authorized"
    assert capture_runs(seconds_later=CAPTURE_RETRY_DELAYS[0]) == ["succeeded"]

    intent = fake_gateway.intents[Payment.objects.get(order=order).intent_id]
    assert intent.amount_received == 3500
    assert movements(order) == [("authorization", 3500), ("capture", 3500)]
    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("closed", "paid")


def test_given_stripe_unavailable_at_every_try_then_the_order_is_flagged_for_a_person(
    fake_gateway, owner
):
    order = on_fulfilment_order(fake_gateway)
    tries = len(CAPTURE_RETRY_DELAYS) + 1
    fake_gateway.fail_next["capture_payment_intent"] = [
        PaymentOutcomeUnknown("timed out") for _ in range(tries)
    ]
    ship(owner, order.number)

    for delay in (0, *CAPTURE_RETRY_DELAYS):
        assert capture_runs(seconds_later=delay) == ["succeeded"]

    assert len(captures(fake_gateway)) == tries
    assert capture_runs(seconds_later=max(CAPTURE_RETRY_DELAYS) * 2) == []  # given up
    order.refresh_from_db()
    assert order.payment_status == "authorized" and order.needs_attention
    flag = Attention.objects.get(order=order)
    assert flag.code == "capture_on_fulfillment_failed" and "timed out" in flag.detail


def test_given_staff_captured_before_the_job_ran_then_the_job_only_closes_the_order(
    fake_gateway, owner
):
    order = on_fulfilment_order(fake_gateway)
    ship(owner, order.number)
    capture_order(order_number=order.number, amount="20.00", actor=staff("manager"))

    assert capture_runs() == ["succeeded"]

    assert len(captures(fake_gateway)) == 1
    assert movements(order) == [("authorization", 3500), ("capture", 2000), ("release", 1500)]
    assert not Attention.objects.filter(order=order).exists()
    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("closed", "paid")


def test_given_stripe_refuses_the_capture_then_the_order_is_flagged_at_once(fake_gateway, owner):
    order = on_fulfilment_order(fake_gateway)
    ship(owner, order.number)
    intent_id = Payment.objects.get(order=order).intent_id
    fake_gateway.cancel_payment_intent(intent_id, idempotency_key="stripe-let-it-lapse")

    assert capture_runs(seconds_later=max(CAPTURE_RETRY_DELAYS) * 2) == ["succeeded"]

    assert len(captures(fake_gateway)) == 1
    assert Attention.objects.get(order=order).code == "capture_on_fulfillment_failed"


@pytest.mark.parametrize(
    "lapse",
    [
        {"authorized_at": timezone.now() - timedelta(days=7)},
        {"intent_status": "canceled"},
    ],
    ids=["past-its-deadline", "voided-at-stripe"],
)
def test_given_a_lapsed_authorisation_then_the_shipment_is_refused_and_nothing_changes(
    fake_gateway, owner, lapse
):
    order = on_fulfilment_order(fake_gateway)
    Payment.objects.filter(order=order).update(**lapse)

    response = ship(owner, order.number)

    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "authorization_lapsed"
    assert not Shipment.objects.filter(order=order).exists()
    assert capture_runs() == []


def test_given_the_setting_changed_after_checkout_then_each_order_keeps_its_mode(
    fake_gateway, owner, settings
):
    on_fulfilment = on_fulfilment_order(fake_gateway)
    manual = new_order(fake_gateway, items=TWO_LINES, capture="manual", pay=True)
    settings.SHOPKEEPER_CAPTURE = "automatic"
    ship(owner, on_fulfilment.number)
    settings.SHOPKEEPER_CAPTURE = "on_fulfillment"
    ship(owner, manual.number)

    assert [run.task_kwargs["order_number"] for run in run_jobs()] == [on_fulfilment.number]

    on_fulfilment.refresh_from_db()
    manual.refresh_from_db()
    assert on_fulfilment.payment_status == "paid"
    assert manual.payment_status == "authorized"  # staff capture it, as before
    assert manual.status == "processing"
