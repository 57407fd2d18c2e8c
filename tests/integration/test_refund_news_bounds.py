"""Refunded never above captured, whoever reports it (issue 7, money item 2).

Refund news is booked only from what Stripe returns when asked (its list of the PaymentIntent's
refunds), never from the event body alone; news that would put refunded + disputed above
captured is not booked but flagged for a person: audit row, order flag, `reconcile` exit 1.
The fake gateway is made permissive, like localstripe, so Stripe's own refusal cannot help.
"""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import CommandError, call_command

from shopkeeper.audit.models import AuditEntry
from shopkeeper.orders.models import Attention, Order
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.payments.gateway import RefundSnapshot
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund
from tests.factories import paid_order, requested_refund, staff
from tests.fakes import refund_event_payload
from tests.integration.orders_admin_fixtures import api_as
from tests.integration.refund_fixtures import refunded_minor
from tests.integration.webhook_fixtures import deliver_ok

pytestmark = pytest.mark.refund_retry_delays()  # one attempt a refund


@pytest.fixture
def order(fake_gateway) -> Order:
    fake_gateway.permissive = True  # an emulator with no money rules
    return paid_order(fake_gateway)  # 25.00 USD captured


def intent_of(order: Order) -> str:
    return order.payments.get().intent_id


def reconcile(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("reconcile", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def flags(order: Order) -> list[str]:
    return list(Attention.objects.filter(order=order).values_list("code", flat=True))


@pytest.mark.django_db
def test_given_signed_refund_created_naming_a_refund_stripe_does_not_list_then_nothing_booked(
    fake_gateway, order
):
    forged = RefundSnapshot(
        id="re_not_at_stripe",
        status="succeeded",
        amount=100_049_900,
        currency="usd",
        payment_intent_id=intent_of(order),
        charge_id=fake_gateway.intents[intent_of(order)].charge_id,
        created=int(time.time()),
    )

    assert deliver_ok(refund_event_payload(forged, "refund.created")) == "processed"

    assert refunded_minor(order) == 0
    assert not Refund.objects.exists()
    assert Order.objects.get(pk=order.pk).payment_status == "paid"


@pytest.mark.django_db
def test_given_dashboard_over_refund_when_reconciled_with_fix_then_not_booked_flagged_exit_1(
    fake_gateway, order
):
    requested_refund(order, actor=staff("manager"), amount="10.00", reason="other")
    over = fake_gateway.refund_outside(intent_of(order), 3000)  # 30.00 on 25.00, 10.00 refunded

    status, output = reconcile("--fix")

    assert status == 1, output
    assert refunded_minor(order) == 1000
    assert not Refund.objects.filter(stripe_refund_id=over.id).exists()
    assert flags(order) == ["refund_exceeds_captured"]
    assert "1 fixed" not in output and "flagged for a person" in output
    flagged = AuditEntry.objects.get(action="order.attention_flagged")
    assert flagged.details["code"] == "refund_exceeds_captured"
    assert flagged.details["subject"] == over.id
    # A second run changes nothing and still says a person must look.
    again, _ = reconcile("--fix")
    assert again == 1 and refunded_minor(order) == 1000
    assert AuditEntry.objects.filter(action="order.attention_flagged").count() == 1


@pytest.mark.django_db
def test_given_webhook_of_a_refund_above_captured_then_not_booked_and_the_order_is_flagged(
    fake_gateway, order
):
    requested_refund(order, actor=staff("manager"), amount="10.00", reason="other")
    over = fake_gateway.refund_outside(intent_of(order), 3000)

    assert deliver_ok(refund_event_payload(over, "refund.created")) == "processed"

    assert refunded_minor(order) == 1000
    detail = order_detail(Order.objects.get(pk=order.pk))
    assert detail["needs_attention"] is True
    assert [(a["code"], bool(a["detail"]), bool(a["at"])) for a in detail["attention"]] == [
        ("refund_exceeds_captured", True, True)
    ]
    viewer = api_as("viewer")
    listed = viewer.get("/orders", needs_attention="true").json()["items"]
    assert [(o["number"], o["needs_attention"]) for o in listed] == [(order.number, True)]
    assert viewer.get("/orders", needs_attention="false").json()["items"] == []
    assert viewer.get(f"/orders/{order.number}").json()["needs_attention"] is True
    assert LedgerEntry.objects.filter(order=order, kind="refund").count() == 1
