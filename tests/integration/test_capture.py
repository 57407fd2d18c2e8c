"""Capturing an authorised payment (manual-capture mode): full, partial, refusals, failures."""

from __future__ import annotations

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.errors import InvalidAmount, PaymentOutcomeUnknown
from shopkeeper.orders.models import Order
from shopkeeper.orders.rules import OrderNotCapturable
from shopkeeper.orders.services import CaptureExceedsAuthorized, cancel_order, capture_order
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.services import apply_intent
from tests.factories import authorised_order, new_order, paid_order
from tests.integration.orders_admin_fixtures import intent_id

pytestmark = pytest.mark.django_db


def ledger(order: Order) -> list[tuple[str, int, str]]:
    rows = LedgerEntry.objects.filter(order=order).values_list(
        "kind", "amount_minor", "external_id"
    )
    pi = intent_id(order)
    return [(kind, amount, ext.replace(pi, "pi")) for kind, amount, ext in rows]


def capture_keys(gateway) -> list[str]:
    return [key for op, key in gateway.calls if op == "capture_payment_intent"]


def test_given_authorised_order_when_captured_in_full_then_paid_and_audited(
    fake_gateway, authorised, manager
):
    order = capture_order(order_number=authorised.number, actor=manager)

    assert (order.status, order.payment_status) == ("processing", "paid")
    assert ledger(order) == [
        ("authorization", 2600, "pi:authorization"),
        ("capture", 2600, "pi:capture"),
    ]
    pi = intent_id(order)
    assert capture_keys(fake_gateway) == [f"order-{order.number}-capture-{pi}-2600"]
    assert fake_gateway.intents[pi].status == "succeeded"
    entry = AuditEntry.objects.get(action="order.captured")
    assert entry.actor_id == manager.pk
    assert entry.before == {"status": "processing", "payment_status": "authorized"}
    assert entry.after == {"status": "processing", "payment_status": "paid"}
    assert entry.details["amount"] == "26.00" and entry.details["released_minor"] == 0
    detail = order_detail(order, actor=manager)
    assert (detail["captured"], detail["refundable"]) == ("26.00", "26.00")


def test_given_authorised_order_when_captured_in_part_then_the_rest_is_released(
    fake_gateway, authorised, manager
):
    order = capture_order(order_number=authorised.number, amount="10.00", actor=manager)

    assert order.payment_status == "paid"
    assert ledger(order) == [
        ("authorization", 2600, "pi:authorization"),
        ("capture", 1000, "pi:capture"),
        ("release", 1600, "pi:release"),
    ]
    detail = order_detail(order, actor=manager)
    assert (detail["captured_minor"], detail["refundable_minor"]) == (1000, 1000)
    assert detail["available_actions"] == ["refund", "ship"]
    assert AuditEntry.objects.get(action="order.captured").details["released_minor"] == 1600


def test_given_capture_done_when_stripe_webhook_reports_it_then_nothing_is_doubled(
    fake_gateway, authorised, manager
):
    capture_order(order_number=authorised.number, amount="10.00", actor=manager)

    apply_intent(fake_gateway.intents[intent_id(authorised)], source="webhook")

    assert [kind for kind, *_ in ledger(authorised)] == ["authorization", "capture", "release"]


def test_given_more_than_authorised_when_captured_then_409_and_stripe_not_called(
    fake_gateway, authorised, manager
):
    with pytest.raises(CaptureExceedsAuthorized) as refusal:
        capture_order(order_number=authorised.number, amount="26.01", actor=manager)

    assert refusal.value.code == "capture_exceeds_authorized"
    assert refusal.value.extra["capturable"] == "26.00"
    assert capture_keys(fake_gateway) == []
    assert Order.objects.get(pk=authorised.pk).payment_status == "authorized"


@pytest.mark.parametrize("amount", ["0", "0.00", "abc", "10.001", "-1", "", "1e3", " "])
def test_given_a_bad_amount_when_captured_then_422_invalid_amount(
    fake_gateway, authorised, manager, amount
):
    with pytest.raises(InvalidAmount) as refusal:
        capture_order(order_number=authorised.number, amount=amount, actor=manager)

    assert refusal.value.code == "invalid_amount"
    assert capture_keys(fake_gateway) == []
    assert ledger(authorised) == [("authorization", 2600, "pi:authorization")]


@pytest.mark.parametrize("state", ["pending", "paid", "voided", "cancelled", "captured"])
def test_given_no_open_authorisation_when_captured_then_409_not_capturable(
    fake_gateway, settings, manager, state
):
    if state == "pending":
        order = new_order(fake_gateway, price="10.50", capture="manual")
    elif state == "paid":
        order = paid_order(fake_gateway, price="10.50")
    else:
        order = authorised_order(fake_gateway, price="10.50")
        if state in ("voided", "cancelled"):
            cancel_order(order_number=order.number, reason="x", actor=manager)
        else:
            capture_order(order_number=order.number, amount="1.00", actor=manager)
    calls = len(capture_keys(fake_gateway))

    with pytest.raises(OrderNotCapturable) as refusal:
        capture_order(order_number=order.number, actor=manager)

    assert refusal.value.code == "order_not_capturable"
    assert len(capture_keys(fake_gateway)) == calls


def test_given_stripe_outcome_unknown_when_capturing_then_503_nothing_recorded_and_retry_once(
    fake_gateway, authorised, manager
):
    fake_gateway.lose_next_response.add("capture_payment_intent")  # captured, answer lost

    with pytest.raises(PaymentOutcomeUnknown):
        capture_order(order_number=authorised.number, amount="10.00", actor=manager)

    assert Order.objects.get(pk=authorised.pk).payment_status == "authorized"
    assert ledger(authorised) == [("authorization", 2600, "pi:authorization")]
    assert not AuditEntry.objects.filter(action="order.captured").exists()

    order = capture_order(order_number=authorised.number, amount="10.00", actor=manager)

    assert order.payment_status == "paid"
    keys = capture_keys(fake_gateway)
    assert len(keys) == 2 and keys[0] == keys[1]  # Stripe replays the first capture
    assert [k for k, *_ in ledger(order)] == ["authorization", "capture", "release"]


def test_given_authorisation_voided_at_stripe_when_captured_then_recorded_and_409(
    fake_gateway, authorised, manager
):
    fake_gateway.cancel_payment_intent(intent_id(authorised), idempotency_key="expired")

    with pytest.raises(OrderNotCapturable):
        capture_order(order_number=authorised.number, actor=manager)

    order = Order.objects.get(pk=authorised.pk)
    assert order.payment_status == "voided"  # what Stripe proved is now on our ledger
    assert [k for k, *_ in ledger(order)] == ["authorization", "void"]


def test_given_captured_elsewhere_when_captured_then_recorded_once_and_409(
    fake_gateway, authorised, manager
):
    fake_gateway.capture_payment_intent(
        intent_id(authorised), amount=None, idempotency_key="dashboard"
    )

    with pytest.raises(OrderNotCapturable):
        capture_order(order_number=authorised.number, amount="5.00", actor=manager)

    order = Order.objects.get(pk=authorised.pk)
    assert order.payment_status == "paid"
    assert [(k, a) for k, a, _ in ledger(order)] == [("authorization", 2600), ("capture", 2600)]
