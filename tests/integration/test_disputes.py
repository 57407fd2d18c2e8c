"""Disputes (chargebacks) from Stripe's `charge.dispute.*` webhooks.

A dispute holds back the disputed amount (a `dispute` ledger entry): the order shows as disputed
and that money cannot be refunded while the dispute is open. Won, the money is released (a
`dispute_closed` entry); lost, it is gone and stays unrefundable. Every step is audited with
Stripe as the actor and shows in the order's timeline. localstripe has no disputes, so these
payloads are built in Stripe's shape and signed with the webhook secret.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from shopkeeper.accounts.models import User
from shopkeeper.audit.models import AuditEntry
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.disputes.models import Dispute
from shopkeeper.orders.models import Order
from shopkeeper.orders_view.selectors import order_detail, order_events
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.rules import RefundExceedsRefundable
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import ADDRESS, paid_order, product, requested_refund, staff, token_for
from tests.fakes import dispute_event_payload
from tests.integration.refund_fixtures import Api
from tests.integration.webhook_fixtures import deliver_ok

pytestmark = pytest.mark.django_db

CREATED, CLOSED = "charge.dispute.created", "charge.dispute.closed"


@pytest.fixture
def order(fake_gateway):
    """Paid 25.00 USD."""
    return paid_order(fake_gateway)


def intent_of(order) -> str:
    return order.payments.get().intent_id


def detail(order) -> dict:
    owner = User.objects.filter(email="o@shop.example").first() or staff("owner", "o@shop.example")
    return order_detail(Order.objects.get(pk=order.pk), actor=owner)


def dispute_ledger(order) -> list[tuple[str, int]]:
    rows = LedgerEntry.objects.filter(order=order, kind__in=("dispute", "dispute_closed"))
    return sorted(rows.values_list("kind", "amount_minor"))


def test_given_paid_order_when_dispute_created_then_disputed_amount_held_and_audited(
    fake_gateway, order
):
    dispute = fake_gateway.dispute(intent_of(order), 2500)

    assert deliver_ok(dispute_event_payload(dispute, CREATED)) == "processed"

    assert dispute_ledger(order) == [("dispute", 2500)]
    entry = LedgerEntry.objects.get(kind="dispute")
    assert (entry.external_id, entry.stripe_dispute_id, entry.source) == (
        dispute.id,
        dispute.id,
        "webhook",
    )
    assert entry.stripe_charge_id == fake_gateway.intents[intent_of(order)].charge_id
    shown = detail(order)
    assert shown["disputed"] is True
    assert (shown["disputed_amount"], shown["disputed_amount_minor"]) == ("25.00", 2500)
    assert shown["refundable_minor"] == 0 and "refund" not in shown["available_actions"]
    assert shown["payment_status"] == "paid"
    (listed,) = shown["disputes"]
    assert (listed["status"], listed["outcome"], listed["reason"]) == (
        "needs_response",
        "open",
        "fraudulent",
    )
    audit = AuditEntry.objects.get(action="order.dispute.created")
    assert (audit.actor_email, audit.target_id) == ("Stripe", order.number)
    assert audit.details["dispute"] == dispute.id and audit.details["amount"] == "25.00 USD"
    assert (audit.before["disputed_minor"], audit.after["disputed_minor"]) == (0, 2500)
    assert audit.after["dispute_status"] == "needs_response"


def test_given_open_dispute_when_refund_requested_then_refused_and_nothing_sent(
    fake_gateway, order
):
    deliver_ok(dispute_event_payload(fake_gateway.dispute(intent_of(order), 2500), CREATED))
    calls = list(fake_gateway.calls)

    with pytest.raises(RefundExceedsRefundable):
        requested_refund(order, actor=staff("manager"), amount="1.00", reason="other")

    assert not Refund.objects.exists() and fake_gateway.calls == calls


def test_given_partial_dispute_then_only_the_undisputed_rest_can_be_refunded_through_the_api(
    fake_gateway, order
):
    deliver_ok(dispute_event_payload(fake_gateway.dispute(intent_of(order), 1000), CREATED))
    api = Api(token_for(staff("manager")))

    refused = api.refund(order.number, {"amount": "15.01", "reason": "other"})
    accepted = api.refund(order.number, {"amount": "15.00", "reason": "other"})

    assert refused.status_code == 409
    assert refused.json()["code"] == "refund_exceeds_refundable"
    assert refused["Content-Type"] == "application/problem+json"
    assert accepted.status_code == 201 and accepted.json()["refund"]["status"] == "succeeded"
    order_out = accepted.json()["order"]
    assert (order_out["refundable_minor"], order_out["disputed_amount_minor"]) == (0, 1000)
    assert order_out["disputed"] is True


def test_given_open_dispute_when_won_then_released_and_refundable_again(fake_gateway, order):
    intent_id = intent_of(order)
    deliver_ok(dispute_event_payload(fake_gateway.dispute(intent_id, 2500), CREATED))

    won = fake_gateway.dispute(intent_id, 2500, status="won")
    deliver_ok(dispute_event_payload(won, CLOSED))

    assert dispute_ledger(order) == [("dispute", 2500), ("dispute_closed", 2500)]
    shown = detail(order)
    assert shown["disputed"] is False and shown["disputed_amount_minor"] == 0
    assert shown["refundable_minor"] == 2500 and "refund" in shown["available_actions"]
    (listed,) = shown["disputes"]
    assert (listed["status"], listed["outcome"]) == ("won", "released")
    assert listed["closed_at"] is not None
    audit = AuditEntry.objects.get(action="order.dispute.won")
    assert audit.actor_email == "Stripe" and audit.before["dispute_status"] == "needs_response"


def test_given_open_dispute_when_lost_then_the_money_stays_gone_and_unrefundable(
    fake_gateway, order
):
    intent_id = intent_of(order)
    deliver_ok(dispute_event_payload(fake_gateway.dispute(intent_id, 2000), CREATED))

    lost = fake_gateway.dispute(intent_id, 2000, status="lost")
    deliver_ok(dispute_event_payload(lost, CLOSED))

    assert dispute_ledger(order) == [("dispute", 2000)]  # nothing released
    shown = detail(order)
    assert shown["disputed"] is False  # over: lost, not open
    assert (shown["disputed_amount_minor"], shown["refundable_minor"]) == (2000, 500)
    assert shown["disputes"][0]["outcome"] == "lost"
    audit = AuditEntry.objects.get(action="order.dispute.lost")
    assert audit.actor_email == "Stripe"
    assert "bank kept 20.00 USD" in audit.details["attention"]
    with pytest.raises(RefundExceedsRefundable):
        requested_refund(order, actor=staff("manager"), amount="5.01", reason="other")


def test_given_dispute_events_then_timeline_shows_them_with_stripe_as_actor(fake_gateway, order):
    intent_id = intent_of(order)
    deliver_ok(dispute_event_payload(fake_gateway.dispute(intent_id, 2500), CREATED))
    deliver_ok(dispute_event_payload(fake_gateway.dispute(intent_id, 2500, status="lost"), CLOSED))

    events = order_events(Order.objects.get(pk=order.pk))

    disputes = [e for e in events if "dispute" in e["type"]]
    assert [e["type"] for e in disputes] == [
        "ledger.dispute",
        "order.dispute.created",
        "order.dispute.lost",
    ]
    assert {e["actor"] for e in disputes} == {"Stripe"}
    assert disputes[0]["amount"] == "25.00" and disputes[0]["details"]["dispute"]


def test_given_closed_event_arrives_before_created_then_same_end_state_and_late_created_is_no_op(
    fake_gateway, order
):
    intent_id = intent_of(order)
    opened = fake_gateway.dispute(intent_id, 2500)
    won = fake_gateway.dispute(intent_id, 2500, status="won")

    deliver_ok(dispute_event_payload(won, CLOSED))
    audit_count = AuditEntry.objects.count()
    deliver_ok(dispute_event_payload(opened, CREATED))

    assert dispute_ledger(order) == [("dispute", 2500), ("dispute_closed", 2500)]
    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.outcome) == ("won", "released")
    assert AuditEntry.objects.count() == audit_count
    actions = AuditEntry.objects.filter(action__startswith="order.dispute.")
    assert list(actions.order_by("seq").values_list("action", flat=True)) == [
        "order.dispute.created",
        "order.dispute.won",
    ]
    assert detail(order)["refundable_minor"] == 2500


def test_given_under_review_when_a_late_created_event_arrives_then_status_stays(
    fake_gateway, order
):
    intent_id = intent_of(order)
    opened = fake_gateway.dispute(intent_id, 2500)
    reviewed = fake_gateway.dispute(intent_id, 2500, status="under_review")

    deliver_ok(dispute_event_payload(reviewed, "charge.dispute.updated"))
    deliver_ok(dispute_event_payload(opened, CREATED))

    assert Dispute.objects.get().status == "under_review"
    assert dispute_ledger(order) == [("dispute", 2500)]


def test_given_same_dispute_news_under_several_events_then_recorded_once(fake_gateway, order):
    dispute = fake_gateway.dispute(intent_of(order), 2500)
    payload = dispute_event_payload(dispute, CREATED, "evt_dispute_1")

    statuses = [
        deliver_ok(payload),
        deliver_ok(payload),
        deliver_ok(dispute_event_payload(dispute, CREATED, "evt_dispute_2")),
    ]

    assert statuses == ["processed", "duplicate", "processed"]
    assert dispute_ledger(order) == [("dispute", 2500)]
    assert Dispute.objects.count() == 1
    assert AuditEntry.objects.filter(action="order.dispute.created").count() == 1
    assert WebhookEvent.objects.count() == 2


def test_given_inquiry_when_closed_without_chargeback_then_released(fake_gateway, order):
    intent_id = intent_of(order)
    inquiry = fake_gateway.dispute(intent_id, 2500, status="warning_needs_response")
    deliver_ok(dispute_event_payload(inquiry, CREATED))
    assert detail(order)["disputed"] is True

    closed = fake_gateway.dispute(intent_id, 2500, status="warning_closed")
    deliver_ok(dispute_event_payload(closed, CLOSED))

    assert dispute_ledger(order) == [("dispute", 2500), ("dispute_closed", 2500)]
    assert AuditEntry.objects.filter(action="order.dispute.closed").exists()
    assert detail(order)["disputed"] is False


def test_given_payload_naming_only_the_charge_then_matched_by_charge(fake_gateway, order):
    """Older API versions name the charge, not the PaymentIntent."""
    dispute = replace(fake_gateway.dispute(intent_of(order), 700), payment_intent_id="")

    deliver_ok(dispute_event_payload(dispute, CREATED))

    assert dispute_ledger(order) == [("dispute", 700)]


def test_given_dispute_of_a_payment_not_ours_then_200_and_nothing_recorded(fake_gateway, order):
    stranger = replace(
        fake_gateway.dispute(intent_of(order), 2500),
        id="dp_elsewhere",
        payment_intent_id="pi_elsewhere",
        charge_id="ch_elsewhere",
    )

    assert deliver_ok(dispute_event_payload(stranger, CREATED)) == "processed"

    assert not Dispute.objects.exists() and not dispute_ledger(order)


def test_given_dispute_in_another_currency_then_not_recorded(fake_gateway, order):
    odd = replace(fake_gateway.dispute(intent_of(order), 2500), currency="EUR")

    deliver_ok(dispute_event_payload(odd, CREATED))

    assert not Dispute.objects.exists() and not dispute_ledger(order)


def test_given_order_api_then_disputes_are_shown_to_staff(fake_gateway, order):
    deliver_ok(dispute_event_payload(fake_gateway.dispute(intent_of(order), 1200), CREATED))

    response = Api(token_for(staff("viewer"))).get(f"/api/admin/orders/{order.number}")

    assert response.status_code == 200
    body = response.json()
    assert (body["disputed"], body["disputed_amount"], body["refundable"]) == (
        True,
        "12.00",
        "13.00",
    )
    (dispute,) = body["disputes"]
    assert (dispute["amount"], dispute["status"], dispute["outcome"]) == (
        "12.00",
        "needs_response",
        "open",
    )


def test_given_dispute_news_overtakes_the_payments_own_then_payment_recorded_first(
    fake_gateway,
):
    product("MUG", price="10.00")
    placed = place_order(
        email="ada@example.com", items=[BasketItem("MUG", 2)], shipping_address=ADDRESS
    )
    fake_gateway.pay(placed.payment.intent_id)  # its own webhook has not arrived yet
    dispute = fake_gateway.dispute(placed.payment.intent_id, 2500)

    deliver_ok(dispute_event_payload(dispute, CREATED))

    order = Order.objects.get(pk=placed.order.pk)
    assert order.payment_status == "paid"
    rows = sorted(LedgerEntry.objects.filter(order=order).values_list("kind", "amount_minor"))
    assert rows == [("authorization", 2500), ("capture", 2500), ("dispute", 2500)]
    assert detail(order)["refundable_minor"] == 0
