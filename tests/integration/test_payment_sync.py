"""Payment sync: `apply_intent` (one path for webhook and return page) and `sync_from_stripe`."""

from dataclasses import replace

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.money import Money
from shopkeeper.orders.models import Order
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.payments.services import (
    PaymentNotFound,
    apply_intent,
    record_payment_intent,
    sync_from_stripe,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def manual_capture(settings):
    settings.SHOPKEEPER_CAPTURE = "manual"


def ledger(order_id=None):
    rows = (
        LedgerEntry.objects.all()
        if order_id is None
        else LedgerEntry.objects.filter(order_id=order_id)
    )
    return sorted((row.kind, row.amount_minor) for row in rows)


def reload(placed):
    return Order.objects.get(pk=placed.order.pk)


# --- sync_from_stripe: the return page ----------------------------------------------------


def test_given_paid_intent_when_synced_with_its_secret_then_order_paid(placed, fake_gateway):
    fake_gateway.pay(placed.payment.intent_id)

    order = sync_from_stripe(placed.payment.intent_id, client_secret=placed.payment.client_secret)

    assert (order.status, order.payment_status) == ("processing", "paid")
    assert order_detail(order)["captured_minor"] == 2600
    assert ledger() == [("authorization", 2600), ("capture", 2600)]
    payment = Payment.objects.get()
    assert (payment.intent_status, payment.card_brand, payment.card_last4) == (
        "succeeded",
        "visa",
        "4242",
    )
    assert payment.charge_id.startswith("ch_")
    entry = AuditEntry.objects.get(action="payment.paid")
    assert (entry.actor_email, entry.details["source"]) == ("Stripe", "return_page")


def test_given_wrong_secret_when_synced_then_not_found_and_stripe_not_called(placed, fake_gateway):
    fake_gateway.pay(placed.payment.intent_id)
    calls_before = list(fake_gateway.calls)

    with pytest.raises(PaymentNotFound):
        sync_from_stripe(placed.payment.intent_id, client_secret="pi_other_secret_x")

    assert fake_gateway.calls == calls_before
    assert not LedgerEntry.objects.exists()
    assert reload(placed).payment_status == "pending"


def test_given_unknown_intent_when_synced_then_not_found(fake_gateway):
    with pytest.raises(PaymentNotFound) as raised:
        sync_from_stripe("pi_unknown", client_secret="pi_unknown_secret")
    assert raised.value.code == "payment_not_found"
    assert not any(op == "retrieve_payment_intent" for op, _ in fake_gateway.calls)


def test_given_unpaid_intent_when_synced_then_order_stays_pending(placed, fake_gateway):
    order = sync_from_stripe(placed.payment.intent_id, client_secret=placed.payment.client_secret)

    assert (order.status, order.payment_status) == ("pending", "pending")
    assert not LedgerEntry.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="payment.p").exists()


def test_given_paid_order_when_synced_again_then_nothing_is_recorded_twice(placed, fake_gateway):
    fake_gateway.pay(placed.payment.intent_id)
    sync_from_stripe(placed.payment.intent_id, client_secret=placed.payment.client_secret)
    audit_count = AuditEntry.objects.count()

    for _ in range(3):
        sync_from_stripe(placed.payment.intent_id, client_secret=placed.payment.client_secret)
        apply_intent(fake_gateway.intents[placed.payment.intent_id], source="webhook")

    assert ledger() == [("authorization", 2600), ("capture", 2600)]
    assert AuditEntry.objects.count() == audit_count


# --- declines and retries ----------------------------------------------------------------


def test_given_declined_card_when_synced_then_failed_and_a_retry_on_the_same_intent_pays(
    placed, fake_gateway
):
    intent_id = placed.payment.intent_id
    fake_gateway.pay(intent_id, decline=True)

    order = sync_from_stripe(intent_id, client_secret=placed.payment.client_secret)
    assert (order.status, order.payment_status) == ("pending", "failed")
    assert Payment.objects.get().last_error == "Card declined"
    assert not LedgerEntry.objects.exists()

    fake_gateway.pay(intent_id)
    order = sync_from_stripe(intent_id, client_secret=placed.payment.client_secret)

    assert (order.status, order.payment_status) == ("processing", "paid")
    assert Payment.objects.get().last_error == ""
    assert [e.action for e in AuditEntry.objects.filter(action__startswith="payment.")] == [
        "payment.started",
        "payment.failed",
        "payment.paid",
    ]


# --- manual capture -----------------------------------------------------------------------


def test_given_manual_capture_when_authorised_then_authorized_and_processing_with_auth_row(
    manual_capture, placed, fake_gateway
):
    assert fake_gateway.intents[placed.payment.intent_id].capture_method == "manual"
    fake_gateway.pay(placed.payment.intent_id)

    order = sync_from_stripe(placed.payment.intent_id, client_secret=placed.payment.client_secret)

    assert (order.status, order.payment_status) == ("processing", "authorized")
    assert ledger() == [("authorization", 2600)]
    detail = order_detail(order)
    assert (detail["authorized"], detail["captured"], detail["refundable"]) == (
        "26.00",
        "0.00",
        "0.00",
    )
    row = LedgerEntry.objects.get()
    assert (row.stripe_payment_intent_id, row.currency) == (placed.payment.intent_id, "USD")


def test_given_authorised_when_partially_captured_then_paid_with_the_rest_released(
    manual_capture, placed, fake_gateway
):
    intent_id = placed.payment.intent_id
    apply_intent(fake_gateway.pay(intent_id), source="webhook")

    captured = fake_gateway.capture_payment_intent(
        intent_id, amount=Money(2000, "USD"), idempotency_key="capture-1"
    )
    order = apply_intent(captured, source="webhook")

    assert order.payment_status == "paid"
    assert ledger() == [("authorization", 2600), ("capture", 2000), ("release", 600)]
    assert order_detail(order)["refundable_minor"] == 2000
    # A later view of the same PaymentIntent adds nothing, even with another amount received.
    apply_intent(replace(captured, amount_received=2600), source="reconcile")
    assert ledger() == [("authorization", 2600), ("capture", 2000), ("release", 600)]


def test_given_authorised_when_canceled_then_voided_with_void_row(
    manual_capture, placed, fake_gateway
):
    intent_id = placed.payment.intent_id
    apply_intent(fake_gateway.pay(intent_id), source="webhook")

    order = apply_intent(
        fake_gateway.cancel_payment_intent(intent_id, idempotency_key="cancel-1"), source="webhook"
    )

    assert order.payment_status == "voided"
    assert ledger() == [("authorization", 2600), ("void", 2600)]
    assert order_detail(order)["authorized_minor"] == 2600


def test_given_unpaid_intent_when_canceled_then_voided_without_ledger_rows(placed, fake_gateway):
    canceled = fake_gateway.cancel_payment_intent(placed.payment.intent_id, idempotency_key="c")

    order = apply_intent(canceled, source="webhook")

    assert order.payment_status == "voided"
    assert not LedgerEntry.objects.exists()


# --- stale, reordered and mismatched news --------------------------------------------------


def test_given_paid_when_an_older_failure_arrives_then_nothing_changes(placed, fake_gateway):
    intent_id = placed.payment.intent_id
    declined = fake_gateway.pay(intent_id, decline=True)
    apply_intent(fake_gateway.pay(intent_id), source="webhook")
    payment_before = Payment.objects.values().get()
    audit_count = AuditEntry.objects.count()

    order = apply_intent(declined, source="webhook")

    assert (order.status, order.payment_status) == ("processing", "paid")
    assert Payment.objects.values().get() == payment_before
    assert AuditEntry.objects.count() == audit_count


def test_given_authorised_when_an_older_pending_snapshot_arrives_then_nothing_changes(
    manual_capture, placed, fake_gateway
):
    intent_id = placed.payment.intent_id
    pending = fake_gateway.intents[intent_id]
    apply_intent(fake_gateway.pay(intent_id), source="webhook")

    apply_intent(pending, source="webhook")

    assert Payment.objects.get().intent_status == "requires_capture"
    assert reload(placed).payment_status == "authorized"


def test_given_captured_when_a_late_capturable_update_arrives_then_nothing_changes(
    manual_capture, placed, fake_gateway
):
    intent_id = placed.payment.intent_id
    authorised = fake_gateway.pay(intent_id)
    apply_intent(
        fake_gateway.capture_payment_intent(intent_id, amount=None, idempotency_key="k"), source="x"
    )

    order = apply_intent(authorised, source="webhook")

    assert order.payment_status == "paid"
    assert Payment.objects.get().intent_status == "succeeded"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": 100}, "amount 100 does not match"),
        ({"currency": "EUR"}, "currency EUR does not match"),
        ({"order_number": "SK-OTHER"}, "belongs to order SK-OTHER"),
    ],
)
def test_given_mismatching_snapshot_when_applied_then_payment_flagged_and_not_accepted(
    placed, fake_gateway, change, reason
):
    paid = fake_gateway.pay(placed.payment.intent_id)

    order = apply_intent(replace(paid, **change), source="webhook")

    assert (order.status, order.payment_status) == ("pending", "pending")
    payment = Payment.objects.get()
    assert payment.flagged and reason in payment.flag_reason
    assert not LedgerEntry.objects.exists()
    flagged = AuditEntry.objects.get(action="payment.flagged")
    assert flagged.target_id == order.number and reason in flagged.details["reason"]
    # A flagged payment stays for people to look at: later news does not quietly accept it.
    apply_intent(paid, source="webhook")
    assert reload(placed).payment_status == "pending"
    assert not LedgerEntry.objects.exists()


def test_given_intent_of_no_order_when_applied_then_ignored(placed, fake_gateway):
    stranger = replace(fake_gateway.pay(placed.payment.intent_id), id="pi_not_ours")

    assert apply_intent(stranger, source="webhook") is None
    assert not LedgerEntry.objects.exists()


def test_given_cancelled_order_when_its_payment_succeeds_then_money_recorded_and_flagged_for_staff(
    placed, fake_gateway
):
    Order.objects.filter(pk=placed.order.pk).update(status="cancelled")

    order = apply_intent(fake_gateway.pay(placed.payment.intent_id), source="webhook")

    assert (order.status, order.payment_status) == ("cancelled", "paid")
    assert ledger() == [("authorization", 2600), ("capture", 2600)]
    entry = AuditEntry.objects.get(action="payment.paid")
    assert "cancelled order" in entry.details["attention"]


# --- an order with more than one PaymentIntent (a new one per retry, as offline) ----------


def second_attempt(placed, fake_gateway):
    intent = fake_gateway.create_payment_intent(
        amount=placed.order.grand_total,
        order_number=placed.order.number,
        capture_method="automatic",
        idempotency_key=f"order-{placed.order.number}-payment-intent-2",
    )
    return record_payment_intent(order=reload(placed), intent=intent)


def test_given_a_replaced_attempt_when_it_is_canceled_then_the_order_stays_payable(
    placed, fake_gateway
):
    first = placed.payment.intent_id
    apply_intent(fake_gateway.pay(first, decline=True), source="storefront")
    second = second_attempt(placed, fake_gateway)

    apply_intent(fake_gateway.cancel_payment_intent(first, idempotency_key="c1"), source="webhook")
    assert reload(placed).payment_status == "failed"

    order = apply_intent(fake_gateway.pay(second.intent_id), source="webhook")
    assert (order.status, order.payment_status) == ("processing", "paid")


def test_given_paid_by_a_new_attempt_when_the_old_attempts_failure_arrives_then_still_paid(
    placed, fake_gateway
):
    declined = fake_gateway.pay(placed.payment.intent_id, decline=True)
    second = second_attempt(placed, fake_gateway)
    apply_intent(fake_gateway.pay(second.intent_id), source="storefront")

    order = apply_intent(declined, source="webhook")

    assert order.payment_status == "paid"
    assert ledger() == [("authorization", 2600), ("capture", 2600)]


def test_given_two_attempts_when_both_take_money_then_both_recorded_and_staff_told(
    placed, fake_gateway
):
    second = second_attempt(placed, fake_gateway)
    apply_intent(fake_gateway.pay(second.intent_id), source="storefront")

    order = apply_intent(fake_gateway.pay(placed.payment.intent_id), source="webhook")

    assert order.payment_status == "paid"
    assert ledger() == [
        ("authorization", 2600),
        ("authorization", 2600),
        ("capture", 2600),
        ("capture", 2600),
    ]
    duplicate = AuditEntry.objects.get(action="payment.duplicate")
    assert duplicate.details["earlier_payment_intents"] == [second.intent_id]
    assert "more than once" in duplicate.details["attention"]
