"""Closing (issue 11): an order closes once every unit is shipped or refunded, its money settled
and nothing open, whichever change comes last: a shipment, a refund that settles after the last
shipment, a refund of the units not shipped, the capture of a shipped authorisation, or a dispute
that ends."""

from __future__ import annotations

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.fulfilment.services import ship_order
from shopkeeper.orders.models import Order
from shopkeeper.orders.services import capture_order
from shopkeeper.refunds.rules import LineRequest
from tests.factories import authorised_order, paid_order, requested_refund, staff
from tests.fakes import dispute_event_payload, refund_event_payload
from tests.integration.webhook_fixtures import deliver_ok

pytestmark = pytest.mark.django_db


def status(order) -> str:
    return Order.objects.get(pk=order.pk).status


def closings(order) -> int:
    return AuditEntry.objects.filter(target_label=order.number, action="order.closed").count()


def test_given_a_refund_pending_at_the_last_shipment_when_it_settles_then_the_order_closes(
    fake_gateway, manager
):
    fake_gateway.refund_status = "pending"
    order = paid_order(fake_gateway)
    refund = requested_refund(order, actor=manager, amount="1.00", reason="other")
    shipment = ship_order(order_number=order.number, actor=manager)
    assert status(order) == "processing"  # the refund is still open
    assert Order.objects.get(pk=order.pk).shipped_at == shipment.shipped_at

    settled = fake_gateway.settle_refund(refund.stripe_refund_id, "succeeded")
    assert deliver_ok(refund_event_payload(settled, "refund.updated")) == "processed"

    assert status(order) == "closed"
    assert closings(order) == 1


def test_given_a_refund_that_fails_later_then_the_order_stays_open(fake_gateway, manager):
    fake_gateway.refund_status = "pending"
    order = paid_order(fake_gateway)
    refund = requested_refund(order, actor=manager, amount="1.00", reason="other")
    ship_order(order_number=order.number, actor=manager, lines={"MUG": 1})

    failed = fake_gateway.settle_refund(refund.stripe_refund_id, "failed", "lost_or_stolen_card")
    deliver_ok(refund_event_payload(failed, "refund.failed"))

    assert status(order) == "processing"  # one mug is still to ship


def test_given_part_shipped_when_the_rest_is_refunded_then_the_order_closes(fake_gateway, manager):
    order = paid_order(fake_gateway, items={"MUG": 3})
    ship_order(order_number=order.number, actor=manager, lines={"MUG": 1})
    mug = order.lines.get()

    requested_refund(order, actor=manager, lines=[LineRequest(line_id=mug.pk, quantity=2)])

    assert status(order) == "closed"  # one shipped, two refunded: nothing left to do


def test_given_an_authorisation_shipped_in_full_when_captured_then_the_order_closes(
    fake_gateway, manager
):
    order = authorised_order(fake_gateway)
    ship_order(order_number=order.number, actor=manager)
    assert status(order) == "processing"

    capture_order(order_number=order.number, amount=None, actor=staff("owner"))

    assert status(order) == "closed"
    assert closings(order) == 1


def test_given_a_dispute_open_at_the_last_shipment_when_won_then_the_order_closes(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    intent_id = order.payments.get().intent_id
    deliver_ok(
        dispute_event_payload(fake_gateway.dispute(intent_id, 500), "charge.dispute.created")
    )
    ship_order(order_number=order.number, actor=manager)
    assert status(order) == "processing"

    won = fake_gateway.dispute(intent_id, 500, status="won")
    deliver_ok(dispute_event_payload(won, "charge.dispute.closed"))

    assert status(order) == "closed"


def test_given_refunded_in_full_before_shipping_then_not_closed_but_cancellable(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)

    requested_refund(order, actor=manager, amount="25.00")

    assert status(order) == "processing"
    assert Order.objects.get(pk=order.pk).shipped_at is None
