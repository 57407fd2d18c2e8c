"""Reconciliation against the FakeGateway: every kind of difference is found, --fix records
what Stripe proves through the ordinary services, and a second run finds nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from shopkeeper.audit.models import AuditEntry
from shopkeeper.orders.models import Order
from shopkeeper.payments.gateway import PaymentOutcomeUnknown
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.reconciliation.facts import Kind
from shopkeeper.reconciliation.services import reconcile
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.services import request_refund
from tests.integration.refund_fixtures import paid_order, refunded_minor, staff
from tests.integration.test_refund_webhooks import AlwaysLost

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast(settings):
    settings.SHOPKEEPER_REFUND_RETRY_DELAYS = [0, 0]


@pytest.fixture
def manager():
    return staff("manager")


def kinds(report) -> list[str]:
    return sorted(difference.kind for difference in report.remaining)


def intent_of(order: Order) -> str:
    return Payment.objects.get(order=order).intent_id


def age(refund: Refund, minutes: int = 30) -> None:
    """The refund was last touched long ago: its request cannot still be under way."""
    Refund.objects.filter(pk=refund.pk).update(
        updated_at=timezone.now() - timedelta(minutes=minutes)
    )


def test_given_books_agree_with_stripe_then_nothing_found_and_exit_0(fake_gateway, manager):
    order = paid_order(fake_gateway)
    request_refund(order_number=order.number, actor=manager, amount="3.00", reason="other")

    report = reconcile()

    assert report.checked == 1 and report.findings == [] and report.exit_code == 0


def test_given_dashboard_refund_when_reconciled_without_fix_then_reported_and_nothing_changes(
    fake_gateway,
):
    order = paid_order(fake_gateway)
    at_stripe = fake_gateway.refund_outside(intent_of(order), 700)

    report = reconcile()

    (difference,) = report.remaining
    assert difference.kind == Kind.REFUND_MISSING_HERE and difference.stripe_id == at_stripe.id
    assert report.exit_code == 1
    assert not Refund.objects.exists() and refunded_minor(order) == 0


def test_given_dashboard_refund_when_fixed_then_recorded_as_external_and_second_run_clean(
    fake_gateway,
):
    order = paid_order(fake_gateway)
    at_stripe = fake_gateway.refund_outside(intent_of(order), 700)

    report = reconcile(fix=True)

    assert [f.fixed for f in report.findings] == [True] and report.exit_code == 0
    refund = Refund.objects.get()
    assert (refund.source, refund.stripe_refund_id, refund.status) == (
        "stripe",
        at_stripe.id,
        "succeeded",
    )
    assert refunded_minor(order) == 700
    assert Order.objects.get(pk=order.pk).payment_status == "partially_refunded"
    assert AuditEntry.objects.filter(action="order.refund.succeeded").exists()
    assert reconcile(fix=True).findings == []


def test_given_refund_answer_lost_when_fixed_then_settled_by_key_without_sending_again(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    refund = request_refund(
        order_number=order.number,
        actor=manager,
        amount="3.00",
        reason="other",
        gateway=AlwaysLost(fake_gateway),
    )
    sent = [call for call in fake_gateway.calls if call[0] == "create_refund"]

    found = reconcile()
    report = reconcile(fix=True)

    assert kinds(found) == [Kind.REFUND_IN_DOUBT]
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.stripe_refund_id
    assert [call for call in fake_gateway.calls if call[0] == "create_refund"] == sent
    assert report.exit_code == 0 and refunded_minor(order) == 300
    assert reconcile().findings == []


def test_given_refund_never_reached_stripe_when_fixed_then_sent_once_with_its_own_key(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [PaymentOutcomeUnknown("connect timeout")] * 3
    refund = request_refund(order_number=order.number, actor=manager, amount="3.00", reason="other")
    age(refund)

    assert kinds(reconcile()) == [Kind.REFUND_NOT_SENT]
    report = reconcile(fix=True)

    refund.refresh_from_db()
    assert refund.status == "succeeded" and report.exit_code == 0
    keys = {key for op, key in fake_gateway.calls if op == "create_refund"}
    assert keys == {refund.idempotency_key} and len(fake_gateway.refunds) == 1
    assert refunded_minor(order) == 300
    assert reconcile(fix=True).findings == []


def test_given_refund_just_sent_and_unanswered_then_left_alone_as_in_flight(fake_gateway, manager):
    order = paid_order(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [PaymentOutcomeUnknown("connect timeout")] * 3
    request_refund(order_number=order.number, actor=manager, amount="3.00", reason="other")

    report = reconcile(fix=True)

    assert report.findings == [] and report.in_flight == 1
    assert not fake_gateway.refunds


def test_given_payment_webhook_lost_when_fixed_then_authorisation_and_capture_recorded(
    fake_gateway,
):
    order = paid_order(fake_gateway)
    placed = Order.objects.create(
        number="SK-LOST",
        email="x@example.com",
        currency="USD",
        subtotal_minor=2000,
        shipping_minor=500,
        grand_total_minor=2500,
    )
    del order  # only the second order matters here
    from shopkeeper.money import Money
    from shopkeeper.payments.services import record_payment_intent

    intent = fake_gateway.create_payment_intent(
        amount=Money(2500, "USD"),
        order_number=placed.number,
        capture_method="automatic",
        idempotency_key="lost",
    )
    record_payment_intent(order=placed, intent=intent)
    fake_gateway.pay(intent.id)  # the customer paid; the webhook never came

    found = reconcile(order_number=placed.number)
    report = reconcile(order_number=placed.number, fix=True)

    assert kinds(found) == [
        Kind.INTENT_STATUS,
        Kind.MOVEMENT_MISSING,
        Kind.MOVEMENT_MISSING,
    ]
    assert report.exit_code == 0
    kinds_on_ledger = set(LedgerEntry.objects.filter(order=placed).values_list("kind", "source"))
    assert kinds_on_ledger == {("authorization", "reconciliation"), ("capture", "reconciliation")}
    assert Order.objects.get(pk=placed.pk).payment_status == "paid"
    assert reconcile(order_number=placed.number).findings == []
    assert replace  # keep the import used by later tests
