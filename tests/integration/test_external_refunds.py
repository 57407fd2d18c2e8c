"""Refunds made outside Shopkeeper (the Stripe Dashboard), learned from `charge.refunded`,
`refund.*` and `charge.refund.updated` webhooks.

Each becomes a refund row from source "stripe" with its ledger entry, actor "Stripe" in the audit
and the timeline, and the payment status the ledger proves. Stripe stopped listing a charge's
refunds in `charge.refunded` payloads (API 2022-11-15): then the handler asks Stripe for them,
before its transaction. A pending refund that fails later gives its amount back.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.orders.models import Order
from shopkeeper.orders_view.selectors import order_detail, order_events
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import ADDRESS, paid_order, product, requested_refund, staff
from tests.fakes import GatewayInBetween, charge_event_payload, refund_event_payload
from tests.integration.refund_fixtures import refunded_minor
from tests.integration.webhook_fixtures import deliver, deliver_ok
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(fake_gateway):
    """Paid 25.00 USD."""
    return paid_order(fake_gateway)


def intent_of(order) -> str:
    return order.payments.get().intent_id


def charge_of(fake_gateway, order):
    (charge,) = fake_gateway.list_charges(intent_of(order))
    return charge


def fresh(order) -> Order:
    return Order.objects.get(pk=order.pk)


class CountingLists(GatewayInBetween):
    """The fake gateway, counting how often the refunds of a payment are asked for."""

    def __init__(self, gateway) -> None:
        super().__init__(gateway)
        self.listed: list[str] = []
        self.unavailable = False

    def list_refunds(self, intent_id):
        self.listed.append(intent_id)
        if self.unavailable:
            raise PaymentOutcomeUnknown("Stripe did not answer")
        return self._gateway.list_refunds(intent_id)


@pytest.fixture
def counting(fake_gateway):
    from shopkeeper.payments.provider import use_gateway

    gateway = CountingLists(fake_gateway)
    with use_gateway(gateway):  # type: ignore[arg-type]
        yield gateway


def test_given_dashboard_refund_listed_in_charge_refunded_then_recorded_as_stripes(
    fake_gateway, order, counting
):
    outside = fake_gateway.refund_outside(intent_of(order), 1500)
    payload = charge_event_payload(charge_of(fake_gateway, order), refunds=[outside])

    assert deliver_ok(payload) == "processed"

    refund = Refund.objects.get(order=order)
    assert (refund.source, refund.status, refund.amount_minor, refund.stripe_refund_id) == (
        "stripe",
        "succeeded",
        1500,
        outside.id,
    )
    assert refund.requested_by is None
    entry = LedgerEntry.objects.get(order=order, kind="refund")
    assert (entry.amount_minor, entry.external_id, entry.source) == (1500, outside.id, "webhook")
    assert fresh(order).payment_status == "partially_refunded"
    assert order_detail(fresh(order))["refundable_minor"] == 1000
    # Even when the payload lists the refunds, Stripe is asked: its body is never booked alone.
    assert counting.listed == [intent_of(order)]


def test_given_charge_refunded_without_its_refunds_list_then_stripe_is_asked_for_them(
    fake_gateway, order, counting
):
    outside = fake_gateway.refund_outside(intent_of(order), 2500)

    deliver_ok(charge_event_payload(charge_of(fake_gateway, order)))

    assert counting.listed == [intent_of(order)]
    refund = Refund.objects.get(order=order)
    assert (refund.stripe_refund_id, refund.status, refund.source) == (
        outside.id,
        "succeeded",
        "stripe",
    )
    assert refunded_minor(order) == 2500 and fresh(order).payment_status == "refunded"


def test_given_external_refund_then_timeline_shows_it_with_stripe_as_actor(fake_gateway, order):
    outside = fake_gateway.refund_outside(intent_of(order), 1500)
    deliver_ok(charge_event_payload(charge_of(fake_gateway, order), refunds=[outside]))

    events = order_events(fresh(order))

    refund_events = [e for e in events if "refund" in e["type"]]
    types = [e["type"] for e in refund_events]
    assert sorted(types) == ["ledger.refund", "order.refund.recorded", "order.refund.succeeded"]
    assert types.index("order.refund.recorded") < types.index("order.refund.succeeded")
    assert {e["actor"] for e in refund_events} == {"Stripe"}
    ledger = next(e for e in refund_events if e["type"] == "ledger.refund")
    assert ledger["amount"] == "15.00" and ledger["details"]["refund"] == outside.id
    succeeded = AuditEntry.objects.get(action="order.refund.succeeded")
    assert succeeded.after["payment_status"] == "partially_refunded"


def test_given_charge_refunded_and_refund_events_for_one_refund_then_recorded_once(
    fake_gateway, order
):
    outside = fake_gateway.refund_outside(intent_of(order), 1000)
    charge = charge_of(fake_gateway, order)

    deliver_ok(refund_event_payload(outside, "refund.created"))
    deliver_ok(charge_event_payload(charge, refunds=[outside], event_id="evt_ch_1"))
    deliver_ok(charge_event_payload(charge, event_id="evt_ch_2"))  # without the list
    deliver_ok(refund_event_payload(outside, "charge.refund.updated"))

    assert Refund.objects.filter(order=order).count() == 1
    assert LedgerEntry.objects.filter(order=order, kind="refund").count() == 1
    assert refunded_minor(order) == 1000
    assert WebhookEvent.objects.filter(status="processed").count() == 4


def test_given_our_own_pending_refund_when_charge_refunded_lists_it_succeeded_then_settled(
    fake_gateway, order
):
    fake_gateway.refund_status = "pending"
    ours = requested_refund(order, actor=staff("manager"), amount="5.00", reason="other")
    assert ours.status == "pending"
    settled = fake_gateway.settle_refund(ours.stripe_refund_id, "succeeded")

    deliver_ok(charge_event_payload(charge_of(fake_gateway, order), refunds=[settled]))

    ours.refresh_from_db()
    assert ours.status == "succeeded" and ours.source == "shopkeeper"
    assert Refund.objects.filter(order=order).count() == 1
    assert refunded_minor(order) == 500


def test_given_external_pending_refund_when_it_fails_then_failed_and_refundable_again(
    fake_gateway, order
):
    pending = fake_gateway.refund_outside(intent_of(order), 2000, status="pending")
    deliver_ok(charge_event_payload(charge_of(fake_gateway, order), refunds=[pending]))
    refund = Refund.objects.get(order=order)
    assert refund.status == "pending"
    assert order_detail(fresh(order))["refundable_minor"] == 500  # held while pending

    failed = fake_gateway.settle_refund(pending.id, "failed", "expired_or_canceled_card")
    deliver_ok(refund_event_payload(failed, "refund.failed"))

    refund.refresh_from_db()
    assert refund.status == "failed" and "expired" in refund.failure_message
    shown = order_detail(fresh(order))
    assert shown["refundable_minor"] == 2500 and shown["payment_status"] == "paid"
    assert shown["refunds"][0]["status"] == "failed"
    assert refunded_minor(order) == 0
    types = [e["type"] for e in order_events(fresh(order))]
    assert "order.refund.failed" in types and "ledger.refund" not in types


def test_given_external_refund_succeeded_when_a_late_pending_event_arrives_then_it_stays(
    fake_gateway, order
):
    """Out of order: `refund.updated` (succeeded) first, then the older `refund.created`."""
    succeeded = fake_gateway.refund_outside(intent_of(order), 1200)
    created = replace(succeeded, status="pending")

    deliver_ok(refund_event_payload(succeeded, "refund.updated"))
    deliver_ok(refund_event_payload(created, "refund.created"))
    deliver_ok(charge_event_payload(charge_of(fake_gateway, order), refunds=[created]))

    refund = Refund.objects.get(order=order)
    assert refund.status == "succeeded"
    assert refunded_minor(order) == 1200 and fresh(order).payment_status == "partially_refunded"


def test_given_failed_refund_when_a_late_succeeded_event_arrives_then_it_stays_failed(
    fake_gateway, order
):
    pending = fake_gateway.refund_outside(intent_of(order), 1200, status="pending")
    failed = fake_gateway.settle_refund(pending.id, "failed", "lost_or_stolen_card")

    deliver_ok(refund_event_payload(failed, "refund.failed"))
    deliver_ok(refund_event_payload(pending, "refund.created"))

    assert Refund.objects.get(order=order).status == "failed"
    assert refunded_minor(order) == 0 and fresh(order).payment_status == "paid"


def test_given_stripe_unreachable_when_charge_refunded_needs_the_list_then_retried_later(
    fake_gateway, order, counting
):
    fake_gateway.refund_outside(intent_of(order), 800)
    counting.unavailable = True
    payload = charge_event_payload(charge_of(fake_gateway, order), event_id="evt_charge_1")

    response = deliver(payload)
    runs = run_jobs(retries_wait=True)

    assert response.status_code == 200 and response.json()["status"] == "received"
    assert [run.outcome for run in runs] == ["retried"]
    event = WebhookEvent.objects.get(event_id="evt_charge_1")
    assert event.status == "received" and "PaymentOutcomeUnknown" in event.error
    assert not Refund.objects.exists()

    counting.unavailable = False
    assert [run.outcome for run in run_jobs(seconds_later=60)] == ["succeeded"]  # the retry
    event.refresh_from_db()
    assert (event.status, event.error) == ("processed", "")
    assert refunded_minor(order) == 800
    assert deliver_ok(payload) == "duplicate"  # Stripe's own redelivery


def test_given_charge_of_no_payment_here_then_200_and_stripe_not_asked(
    fake_gateway, order, counting
):
    stranger = replace(charge_of(fake_gateway, order), id="ch_elsewhere", payment_intent_id="")

    assert deliver_ok(charge_event_payload(stranger)) == "processed"

    assert counting.listed == [] and not Refund.objects.exists()


def test_given_success_later_failed_unheard_when_freed_money_refunded_again_then_within_captured(
    fake_gateway, order, counting
):
    """News overtakes news: the dashboard refund of money a failed refund freed arrives before
    that failure. Read with Stripe's current list, the ledger never exceeds what was captured."""
    ours = requested_refund(order, actor=staff("manager"), reason="other")
    assert refunded_minor(order) == 2500
    fake_gateway.settle_refund(ours.stripe_refund_id, "failed", "expired_or_canceled_card")
    again = fake_gateway.refund_outside(intent_of(order), 2500)

    deliver_ok(refund_event_payload(again, "refund.created"))

    assert counting.listed == [intent_of(order)]
    ours.refresh_from_db()
    assert ours.status == "failed"
    assert refunded_minor(order) == 2500  # the failed one reversed, the dashboard one counted
    kinds = sorted(LedgerEntry.objects.filter(order=order).values_list("kind", "amount_minor"))
    assert ("refund_reversal", 2500) in kinds
    assert fresh(order).payment_status == "refunded"


def test_given_refund_news_when_stripe_cannot_list_refunds_then_retried_later(
    fake_gateway, order, counting
):
    outside = fake_gateway.refund_outside(intent_of(order), 900)
    counting.unavailable = True
    payload = refund_event_payload(outside, "refund.created", "evt_refund_unlisted")

    assert deliver(payload).status_code == 200
    assert [run.outcome for run in run_jobs(retries_wait=True)] == ["retried"]
    assert not Refund.objects.exists()

    counting.unavailable = False
    assert [run.outcome for run in run_jobs(seconds_later=60)] == ["succeeded"]
    assert WebhookEvent.objects.get(event_id="evt_refund_unlisted").status == "processed"
    assert refunded_minor(order) == 900


def placed_and_paid_at_stripe_only(fake_gateway):
    """Paid at Stripe; the payment's own webhook has not arrived yet."""
    product("MUG", price="10.00")
    placed = place_order(
        email="ada@example.com", items=[BasketItem("MUG", 2)], shipping_address=ADDRESS
    )
    fake_gateway.pay(placed.payment.intent_id)
    assert placed.order.payment_status == "pending"
    return placed.order


def test_given_refund_news_overtakes_the_payments_own_then_payment_recorded_first(
    fake_gateway,
):
    order = placed_and_paid_at_stripe_only(fake_gateway)
    outside = fake_gateway.refund_outside(intent_of(order), 420)

    deliver_ok(refund_event_payload(outside, "refund.created"))

    kinds = sorted(LedgerEntry.objects.filter(order=order).values_list("kind", "amount_minor"))
    assert kinds == [("authorization", 2500), ("capture", 2500), ("refund", 420)]
    assert fresh(order).payment_status == "partially_refunded"
    assert order_detail(fresh(order))["refundable_minor"] == 2080
