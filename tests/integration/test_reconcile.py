"""Reconciliation against the FakeGateway: every kind of difference is found, --fix records
what Stripe proves through the ordinary services, and a second run finds nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from shopkeeper.audit.models import AuditEntry
from shopkeeper.disputes.models import Dispute
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.money import Money
from shopkeeper.orders.lookups import OrderNotFound
from shopkeeper.orders.models import Order
from shopkeeper.orders.services import capture_order
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.reconciliation.facts import Kind
from shopkeeper.reconciliation.services import reconcile
from shopkeeper.refunds.models import Refund
from tests.factories import authorised_order, new_order, paid_order, requested_refund
from tests.fakes import AlwaysLost, GatewayInBetween
from tests.integration.refund_fixtures import refunded_minor

pytestmark = pytest.mark.django_db


def kinds(report) -> list[str]:
    return sorted(difference.kind for difference in report.remaining)


def intent_of(order: Order) -> str:
    return Payment.objects.get(order=order).intent_id


def age(refund: Refund, minutes: int = 30) -> None:
    """The refund was last sent long ago: its request cannot still be under way."""
    then = timezone.now() - timedelta(minutes=minutes)
    Refund.objects.filter(pk=refund.pk).update(updated_at=then, last_sent_at=then)


def test_given_books_agree_with_stripe_then_nothing_found_and_exit_0(fake_gateway, manager):
    order = paid_order(fake_gateway)
    requested_refund(order, actor=manager, amount="3.00", reason="other")

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
    refund = requested_refund(
        order,
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
    refused = PaymentOutcomeUnknown("connect timeout", in_flight=False)
    fake_gateway.fail_next["create_refund"] = [refused] * 3
    refund = requested_refund(order, actor=manager, amount="3.00", reason="other")
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
    refused = PaymentOutcomeUnknown("connect timeout", in_flight=False)
    fake_gateway.fail_next["create_refund"] = [refused] * 3
    requested_refund(order, actor=manager, amount="3.00", reason="other")

    report = reconcile(fix=True)

    assert report.findings == [] and report.in_flight == 1
    assert not fake_gateway.refunds


def unrecorded_payment(gateway, settings) -> Order:
    """An order whose PaymentIntent the customer paid while every webhook was lost."""
    order = new_order(gateway, price="10.50")
    gateway.pay(intent_of(order))
    return order


def test_given_payment_webhook_lost_when_fixed_then_authorisation_and_capture_recorded(
    fake_gateway, settings
):
    order = unrecorded_payment(fake_gateway, settings)

    found = reconcile(order_number=order.number)
    report = reconcile(order_number=order.number, fix=True)

    assert kinds(found) == [Kind.INTENT_STATUS, Kind.MOVEMENT_MISSING, Kind.MOVEMENT_MISSING]
    assert report.exit_code == 0
    recorded = set(LedgerEntry.objects.filter(order=order).values_list("kind", "source"))
    assert recorded == {("authorization", "reconciliation"), ("capture", "reconciliation")}
    assert Order.objects.get(pk=order.pk).payment_status == "paid"
    assert AuditEntry.objects.filter(action="payment.paid").exists()
    assert reconcile(order_number=order.number).findings == []


def test_given_partial_capture_then_books_agree_and_nothing_is_a_refund(
    fake_gateway, settings, manager
):
    order = authorised_order(fake_gateway, price="10.50")
    capture_order(order_number=order.number, amount="20.00", actor=manager)

    assert reconcile(fix=True).findings == []
    assert not Refund.objects.exists()


def test_given_manual_capture_canceled_at_stripe_then_void_recorded(fake_gateway, settings):
    order = authorised_order(fake_gateway, price="10.50")
    fake_gateway.cancel_payment_intent(intent_of(order), idempotency_key="dashboard-cancel")

    report = reconcile(fix=True)

    assert report.exit_code == 0 and [f.fixed for f in report.findings] == [True, True]
    assert LedgerEntry.objects.filter(order=order, kind="void").count() == 1
    assert Order.objects.get(pk=order.pk).payment_status == "voided"
    assert reconcile().findings == []


def test_given_refund_pending_at_stripe_then_settled_when_stripe_settles_it(fake_gateway, manager):
    fake_gateway.refund_status = "pending"
    order = paid_order(fake_gateway)
    refund = requested_refund(order, actor=manager, amount="3.00", reason="other")

    assert reconcile(fix=True).findings == []  # pending on both sides: nothing to do
    fake_gateway.settle_refund(refund.stripe_refund_id, "failed", "expired_or_canceled_card")
    report = reconcile(fix=True)

    refund.refresh_from_db()
    assert report.exit_code == 0 and refund.status == "failed"
    assert refund.failure_message and refunded_minor(order) == 0


def test_given_refund_failed_after_it_succeeded_then_the_reversal_is_recorded(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    refund = requested_refund(order, actor=manager, amount="3.00", reason="other")
    fake_gateway.settle_refund(refund.stripe_refund_id, "failed", "lost_or_stolen_card")

    report = reconcile(fix=True)

    assert report.exit_code == 0 and refunded_minor(order) == 0
    assert Order.objects.get(pk=order.pk).payment_status == "paid"
    assert reconcile().findings == []


def test_given_ledger_refund_stripe_does_not_show_then_reported_and_never_fixed(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    refund = requested_refund(order, actor=manager, amount="3.00", reason="other")
    del fake_gateway.refunds[refund.stripe_refund_id]  # Stripe has no such refund
    ledger = list(LedgerEntry.objects.values_list("kind", "amount_minor"))

    report = reconcile(fix=True)

    assert kinds(report) == [Kind.REFUND_MISSING_AT_STRIPE] and report.exit_code == 1
    assert list(LedgerEntry.objects.values_list("kind", "amount_minor")) == ledger


def test_given_dispute_unknown_here_when_fixed_then_held_back_and_then_released_when_won(
    fake_gateway,
):
    order = paid_order(fake_gateway)
    fake_gateway.dispute(intent_of(order), 1000)

    report = reconcile(fix=True)

    assert [(f.difference.kind, f.fixed) for f in report.findings] == [
        (Kind.DISPUTE_MISSING_HERE, True)
    ]
    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.amount_minor) == ("needs_response", 1000)
    assert Order.objects.get(pk=order.pk).payment_status == "paid"

    fake_gateway.dispute(intent_of(order), 1000, status="won")
    assert kinds(reconcile()) == [Kind.DISPUTE_STATUS]
    assert reconcile(fix=True).exit_code == 0
    kinds_on_ledger = sorted(LedgerEntry.objects.filter(order=order).values_list("kind", flat=True))
    assert kinds_on_ledger == ["authorization", "capture", "dispute", "dispute_closed"]
    assert reconcile().findings == []


def test_given_payment_intent_stripe_does_not_know_then_reported(fake_gateway):
    order = paid_order(fake_gateway)
    del fake_gateway.intents[intent_of(order)]

    report = reconcile(order_number=order.number, fix=True)

    assert kinds(report) == [Kind.PAYMENT_MISSING_AT_STRIPE] and report.exit_code == 1


def test_given_everything_fixed_then_a_second_run_changes_nothing(fake_gateway, manager, settings):
    first = paid_order(fake_gateway)
    fake_gateway.refund_outside(intent_of(first), 400)
    unrecorded_payment(fake_gateway, settings)
    fake_gateway.dispute(intent_of(first), 500)
    assert reconcile(fix=True).exit_code == 0
    counts = (LedgerEntry.objects.count(), AuditEntry.objects.count(), Refund.objects.count())

    again = reconcile(fix=True)

    assert again.findings == [] and again.exit_code == 0
    assert counts == (
        LedgerEntry.objects.count(),
        AuditEntry.objects.count(),
        Refund.objects.count(),
    )


# --- Scope ------------------------------------------------------------------------------------


def backdate(order: Order, fake_gateway, days: int) -> None:
    """The order and its PaymentIntent were made `days` ago."""
    then = timezone.now() - timedelta(days=days)
    Payment.objects.filter(order=order).update(created_at=then)
    intent = fake_gateway.intents[intent_of(order)]
    fake_gateway.intents[intent.id] = replace(intent, created=int(then.timestamp()))


def test_given_since_then_payment_intents_created_since_and_older_ones_with_news_since_are_checked(
    fake_gateway,
):
    """--since reads Stripe's lists from that moment: the PaymentIntents created since, and
    the refunds (and disputes) made since, whatever the age of their PaymentIntent."""
    quiet, old, new = paid_order(fake_gateway), paid_order(fake_gateway), paid_order(fake_gateway)
    backdate(quiet, fake_gateway, days=10)
    backdate(old, fake_gateway, days=10)
    stale = fake_gateway.refund_outside(intent_of(quiet), 100)
    nine_days_ago = int((timezone.now() - timedelta(days=9)).timestamp())
    fake_gateway.refunds[stale.id] = replace(stale, created=nine_days_ago)
    fake_gateway.refund_outside(intent_of(old), 150)
    fake_gateway.refund_outside(intent_of(new), 200)

    report = reconcile(since=(timezone.now() - timedelta(days=2)).date())

    assert report.checked == 2
    assert sorted(d.order_number for d in report.remaining) == sorted([old.number, new.number])
    assert ("list_payment_intents", str(int(_start(days=2)))) in fake_gateway.calls


def _start(days: int) -> float:
    day = (timezone.now() - timedelta(days=days)).date()
    return timezone.make_aware(datetime.combine(day, time.min)).timestamp()


def test_given_since_then_an_older_payment_with_a_refund_in_doubt_is_still_settled(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    refund = requested_refund(
        order,
        actor=manager,
        amount="3.00",
        reason="other",
        gateway=AlwaysLost(fake_gateway),
    )
    backdate(order, fake_gateway, days=10)

    report = reconcile(since=timezone.now().date(), fix=True)

    refund.refresh_from_db()
    assert report.checked == 1 and refund.status == "succeeded"


def test_given_order_then_only_its_payment_intents_and_no_listing(fake_gateway):
    first, second = paid_order(fake_gateway), paid_order(fake_gateway)
    fake_gateway.refund_outside(intent_of(first), 100)
    fake_gateway.refund_outside(intent_of(second), 200)

    report = reconcile(order_number=second.number)

    assert report.checked == 1 and [d.order_number for d in report.remaining] == [second.number]
    assert not [call for call in fake_gateway.calls if call[0] == "list_payment_intents"]


def test_given_unknown_order_then_not_found(fake_gateway):
    with pytest.raises(OrderNotFound):
        reconcile(order_number="SK-NOPE")


def test_given_payment_intents_of_another_shop_or_database_then_skipped(fake_gateway):
    order = paid_order(fake_gateway)
    stranger = fake_gateway.create_payment_intent(
        amount=Money(999, "USD"),
        order_number="OTHER-1",
        capture_method="automatic",
        idempotency_key="other-shop",
    )
    fake_gateway.pay(stranger.id)
    earlier = fake_gateway.create_payment_intent(
        amount=Money(2500, "USD"),
        order_number=order.number,  # same number, from a database reset since
        capture_method="automatic",
        idempotency_key="reset-db",
    )
    fake_gateway.pay(earlier.id)
    fake_gateway.intents[earlier.id] = replace(
        fake_gateway.intents[earlier.id], created=int(order.created_at.timestamp()) - 3600
    )

    report = reconcile()

    assert (report.checked, report.skipped, report.findings) == (1, 2, [])


def test_given_stripe_unreachable_then_exit_2_and_nothing_changes(fake_gateway):
    paid_order(fake_gateway)

    class Down:
        def list_payment_intents(self, **kwargs):
            raise PaymentOutcomeUnknown("Stripe did not answer the list payments request")
            yield  # a generator, like the real one

    report = reconcile(gateway=Down(), fix=True)  # type: ignore[arg-type]

    assert report.exit_code == 2 and report.checked == 0
    assert "did not answer" in report.unreachable[0]


def test_given_stripe_fails_for_one_payment_then_the_others_are_checked_and_exit_2(
    fake_gateway,
):
    broken, fine = paid_order(fake_gateway), paid_order(fake_gateway)
    fake_gateway.refund_outside(intent_of(broken), 100)  # a difference: read again on its own
    fake_gateway.refund_outside(intent_of(fine), 100)

    class FailsFor(GatewayInBetween):
        def __init__(self, gateway, intent_id):
            super().__init__(gateway)
            self._intent_id = intent_id

        def list_refunds(self, intent_id):
            if intent_id == self._intent_id:
                raise PaymentOutcomeUnknown("read timed out")
            return self._gateway.list_refunds(intent_id)

    report = reconcile(gateway=FailsFor(fake_gateway, intent_of(broken)), fix=True)  # type: ignore[arg-type]

    assert report.checked == 2 and report.exit_code == 2
    assert [f.fixed for f in report.findings] == [True]
    assert report.unreachable == [f"{intent_of(broken)}: read timed out"]
