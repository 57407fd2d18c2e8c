"""Money operations on one order are serialised by our own state (issue 7, money item 1).

A capture or cancel claims the order before Stripe is called; a conflicting one is refused with
409 `operation_in_progress` while it is under way; a claim left by a lost answer expires after
its lease, and the next request asks Stripe first. The ledger never records a capture after a
void nor a void after a capture: when Stripe's answer says so, the order is flagged for a person.
The fake gateway is made permissive, like localstripe, where the test needs Stripe to accept both.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from shopkeeper.audit.models import AuditEntry
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.orders.attention import OrderNeedsAttention
from shopkeeper.orders.models import Attention, Order
from shopkeeper.orders.operations import OperationInProgress
from shopkeeper.orders.rules import OrderPaidRefundFirst
from shopkeeper.orders.services import cancel_order, capture_order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.services import request_refund
from tests.fakes import intent_event_payload
from tests.integration.orders_admin_fixtures import api_as, intent_id
from tests.integration.webhook_fixtures import deliver_ok

pytestmark = [pytest.mark.django_db, pytest.mark.refund_retry_delays()]  # one attempt a refund


def kinds(order: Order) -> list[str]:
    return sorted(LedgerEntry.objects.filter(order=order).values_list("kind", flat=True))


def flags(order: Order) -> list[str]:
    return list(Attention.objects.filter(order=order).values_list("code", flat=True))


def expire_claim(order: Order, settings) -> None:
    lease = timedelta(seconds=settings.SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS)
    started = Order.objects.get(pk=order.pk).operation_started_at
    assert started is not None
    Order.objects.filter(pk=order.pk).update(operation_started_at=started - lease)


def reconcile(*args: str) -> int:
    try:
        call_command("reconcile", *args, stdout=io.StringIO())
    except CommandError as error:
        return int(error.returncode)
    return 0


def test_given_a_capture_without_stripes_answer_then_cancel_and_refund_get_operation_in_progress(
    fake_gateway, authorised, manager
):
    fake_gateway.lose_next_response.add("capture_payment_intent")
    with pytest.raises(PaymentOutcomeUnknown):
        capture_order(order_number=authorised.number, amount="10.00", actor=manager)

    with pytest.raises(OperationInProgress) as cancel:
        cancel_order(order_number=authorised.number, reason="x", actor=manager)
    with pytest.raises(OperationInProgress):
        capture_order(order_number=authorised.number, amount="26.00", actor=manager)
    with pytest.raises(OperationInProgress):
        request_refund(order_number=authorised.number, actor=manager, reason="other")
    answer = api_as("owner").post(f"/orders/{authorised.number}/cancel", {"reason": "x"})

    assert cancel.value.extra["operation"] == "capture"
    assert answer.status_code == 409 and answer.json()["code"] == "operation_in_progress"
    assert [op for op, _ in fake_gateway.calls].count("cancel_payment_intent") == 0
    # The same capture again (same idempotency key) goes ahead, and releases the claim.
    captured = capture_order(order_number=authorised.number, amount="10.00", actor=manager)
    assert captured.payment_status == "paid" and captured.operation == ""
    with pytest.raises(OrderPaidRefundFirst):
        cancel_order(order_number=authorised.number, reason="x", actor=manager)


def test_given_a_claim_past_its_lease_then_the_next_request_asks_stripe_and_goes_ahead(
    fake_gateway, authorised, manager, settings
):
    fake_gateway.fail_next["capture_payment_intent"] = [PaymentOutcomeUnknown("timeout")]
    with pytest.raises(PaymentOutcomeUnknown):
        capture_order(order_number=authorised.number, amount="10.00", actor=manager)
    expire_claim(authorised, settings)

    cancelled = cancel_order(order_number=authorised.number, reason="x", actor=manager)

    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "voided")
    assert ("retrieve_payment_intent", intent_id(authorised)) in fake_gateway.calls
    expired = AuditEntry.objects.get(action="order.operation_expired")
    assert expired.details["operation"] == "capture"
    assert kinds(authorised) == ["authorization", "void"] and flags(authorised) == []


def test_given_a_capture_that_went_through_unrecorded_when_its_lease_ends_then_it_is_recorded(
    fake_gateway, authorised, manager, settings
):
    fake_gateway.lose_next_response.add("capture_payment_intent")  # captured, answer lost
    with pytest.raises(PaymentOutcomeUnknown):
        capture_order(order_number=authorised.number, actor=manager)
    expire_claim(authorised, settings)

    with pytest.raises(OrderPaidRefundFirst):
        cancel_order(order_number=authorised.number, reason="x", actor=manager)

    order = Order.objects.get(pk=authorised.pk)
    assert order.payment_status == "paid" and order.operation == ""
    assert kinds(order) == ["authorization", "capture"]
    assert [op for op, _ in fake_gateway.calls].count("cancel_payment_intent") == 0


def test_given_a_voided_order_when_stripe_reports_it_captured_then_flagged_not_recorded(
    fake_gateway, authorised, manager
):
    cancel_order(order_number=authorised.number, reason="x", actor=manager)
    fake_gateway.permissive = True
    captured = fake_gateway.capture_payment_intent(
        intent_id(authorised), amount=None, idempotency_key="dashboard"
    )

    assert deliver_ok(intent_event_payload(captured, "payment_intent.succeeded")) == "processed"

    order = Order.objects.get(pk=authorised.pk)
    assert (order.status, order.payment_status) == ("cancelled", "voided")
    assert kinds(order) == ["authorization", "void"]
    assert flags(order) == ["capture_after_void"]
    assert AuditEntry.objects.filter(action="order.attention_flagged").count() == 1
    assert reconcile("--order", order.number) == 1


def test_given_a_capture_made_at_stripe_while_our_cancel_is_under_way_then_void_not_recorded(
    fake_gateway, authorised, manager
):
    """The Dashboard captures while our cancel is on its way; an emulator accepts both. Our
    cancel's answer is not recorded into a ledger that holds the capture: the order is flagged."""
    fake_gateway.permissive = True
    real_cancel = fake_gateway.cancel_payment_intent

    def cancel_after_dashboard_capture(intent: str, *, idempotency_key: str):
        captured = fake_gateway.capture_payment_intent(
            intent, amount=None, idempotency_key="dashboard"
        )
        deliver_ok(intent_event_payload(captured, "payment_intent.succeeded"))
        return real_cancel(intent, idempotency_key=idempotency_key)

    fake_gateway.cancel_payment_intent = cancel_after_dashboard_capture  # type: ignore[method-assign]
    with pytest.raises(OrderNeedsAttention) as refusal:
        cancel_order(order_number=authorised.number, reason="x", actor=manager)

    order = Order.objects.get(pk=authorised.pk)
    assert refusal.value.code == "order_needs_attention"
    assert (order.status, order.payment_status, order.operation) == ("processing", "paid", "")
    assert "void" not in kinds(order) and "capture" in kinds(order)
    assert flags(order) == ["void_after_capture"]
    detail = api_as("viewer").get(f"/orders/{order.number}").json()
    assert detail["needs_attention"] is True
    assert detail["attention"][0]["code"] == "void_after_capture"


def test_given_a_capture_still_at_stripe_past_its_lease_when_voided_meanwhile_then_flagged(
    fake_gateway, authorised, manager, settings
):
    """A capture outlives its lease at Stripe; meanwhile a cancel, finding the claim expired and
    Stripe still holding the authorisation, voids it. When the capture's answer finally comes
    (an emulator accepts both), it is not recorded after the void: the order is flagged."""
    fake_gateway.permissive = True
    real_capture = fake_gateway.capture_payment_intent
    cancelled: list[Order] = []

    def slow_capture(intent: str, **kwargs):
        expire_claim(authorised, settings)
        cancelled.append(cancel_order(order_number=authorised.number, reason="x", actor=manager))
        return real_capture(intent, **kwargs)

    fake_gateway.capture_payment_intent = slow_capture  # type: ignore[method-assign]
    with pytest.raises(OrderNeedsAttention):
        capture_order(order_number=authorised.number, amount="10.00", actor=manager)

    order = Order.objects.get(pk=authorised.pk)
    assert cancelled[0].status == "cancelled"
    assert (order.status, order.payment_status, order.operation) == ("cancelled", "voided", "")
    assert kinds(order) == ["authorization", "void"]
    assert flags(order) == ["capture_after_void"]


def test_given_a_capture_answer_lost_past_its_lease_when_reconciled_then_recorded_and_released(
    fake_gateway, authorised, manager, settings
):
    fake_gateway.lose_next_response.add("capture_payment_intent")  # captured, answer lost
    with pytest.raises(PaymentOutcomeUnknown):
        capture_order(order_number=authorised.number, actor=manager)
    assert reconcile("--fix", "--order", authorised.number) == 0  # within the lease: left alone
    assert Order.objects.get(pk=authorised.pk).operation == "capture"
    expire_claim(authorised, settings)

    assert reconcile("--fix", "--order", authorised.number) == 0

    order = Order.objects.get(pk=authorised.pk)
    assert (order.payment_status, order.operation, order.operation_key) == ("paid", "", "")
    assert kinds(order) == ["authorization", "capture"]
    assert AuditEntry.objects.filter(action="order.operation_expired").count() == 1
