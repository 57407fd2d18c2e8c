"""Capture on fulfilment against a real localstripe and Stripe SDK: checkout authorises, a
partial shipment leaves the authorisation alone, and the last shipment's job captures what
shipped plus shipping at "Stripe". localstripe reports no `amount_received`: what it captured is
its charge's amount less what the capture released (it records a release as a refund)."""

from __future__ import annotations

import pytest

from shopkeeper.fulfilment.services import ship_order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.services import sync_from_stripe
from tests.factories import new_order
from tests.jobs import run_jobs

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db]


def captured_at_stripe(browser, intent_id: str) -> int:
    charge = browser.v1.payment_intents.retrieve(intent_id).latest_charge
    charge = charge if not isinstance(charge, str) else browser.v1.charges.retrieve(charge)
    assert charge.captured
    return charge.amount - charge.amount_refunded


def test_given_on_fulfillment_when_the_last_shipment_leaves_then_localstripe_captured_it(
    localstripe_gateway, browser, settings, manager
):
    # 2 x MUG and 1 x CAP at 10.50, shipping 5.00: 36.50 USD.
    order = new_order(items={"MUG": 2, "CAP": 1}, price="10.50", capture="on_fulfillment")
    intent_id = order.payments.get().intent_id
    browser.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    assert browser.v1.payment_intents.confirm(intent_id).status == "requires_capture"
    assert sync_from_stripe(intent_id).payment_status == "authorized"

    ship_order(order_number=order.number, actor=manager, lines={"MUG": 2})
    assert [run.task_name for run in run_jobs()] == []
    assert browser.v1.payment_intents.retrieve(intent_id).status == "requires_capture"

    ship_order(order_number=order.number, actor=manager)
    runs = run_jobs()

    assert [(run.task_name, run.outcome) for run in runs] == [
        ("fulfilment.capture_fulfilled_order", "succeeded")
    ]
    assert browser.v1.payment_intents.retrieve(intent_id).status == "succeeded"
    assert captured_at_stripe(browser, intent_id) == 3650
    assert list(
        LedgerEntry.objects.filter(order=order).order_by("id").values_list("kind", "amount_minor")
    ) == [("authorization", 3650), ("capture", 3650)]
    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("closed", "paid")
