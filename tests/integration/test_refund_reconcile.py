"""Reconciliation: refunds left pending are settled from what Stripe knows, and sent again only
when Stripe never received them (with the same key, so never twice)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from shopkeeper.payments.gateway import PaymentOutcomeUnknown
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.services import request_refund
from shopkeeper.refunds.settlement import reconcile_pending_refunds
from tests.integration.refund_fixtures import paid_order, refunded_minor, staff
from tests.integration.test_refund_webhooks import AlwaysLost

pytestmark = pytest.mark.django_db

NOW = timedelta(0)


@pytest.fixture(autouse=True)
def fast(settings):
    settings.SHOPKEEPER_REFUND_RETRY_DELAYS = [0, 0]


@pytest.fixture
def manager():
    return staff("manager")


def creations(gateway) -> int:
    return sum(1 for op, _ in gateway.calls if op == "create_refund")


def test_given_refund_made_but_answer_lost_when_reconciled_then_found_by_key_and_settled(
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
    assert refund.status == "pending"
    sent = creations(fake_gateway)

    report = reconcile_pending_refunds(older_than=NOW, gateway=fake_gateway)

    refund.refresh_from_db()
    assert refund.status == "succeeded" and report.settled == [refund.pk]
    assert creations(fake_gateway) == sent  # looked up, not sent again
    assert len(fake_gateway.refunds) == 1 and refunded_minor(order) == 300


def test_given_refund_stripe_never_received_when_reconciled_then_sent_with_same_key(
    fake_gateway, manager
):
    order = paid_order(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [PaymentOutcomeUnknown("connect timeout")] * 3
    refund = request_refund(order_number=order.number, actor=manager, amount="3.00", reason="other")
    assert refund.status == "pending" and not fake_gateway.refunds

    report = reconcile_pending_refunds(older_than=NOW, gateway=fake_gateway)

    refund.refresh_from_db()
    assert refund.status == "succeeded" and report.resent == [refund.pk]
    keys = {key for op, key in fake_gateway.calls if op == "create_refund"}
    assert keys == {refund.idempotency_key}
    assert len(fake_gateway.refunds) == 1 and refunded_minor(order) == 300


def test_given_refund_pending_at_stripe_when_stripe_settles_then_reconciliation_records_it(
    fake_gateway, manager
):
    fake_gateway.refund_status = "pending"
    order = paid_order(fake_gateway)
    refund = request_refund(order_number=order.number, actor=manager, amount="3.00", reason="other")

    assert reconcile_pending_refunds(older_than=NOW, gateway=fake_gateway).still_unknown == [
        refund.pk
    ]
    fake_gateway.settle_refund(refund.stripe_refund_id, "succeeded")
    reconcile_pending_refunds(older_than=NOW, gateway=fake_gateway)

    refund.refresh_from_db()
    assert refund.status == "succeeded" and refunded_minor(order) == 300


def test_given_stripe_still_unreachable_when_reconciled_then_left_pending(fake_gateway, manager):
    order = paid_order(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [PaymentOutcomeUnknown("down")] * 6
    refund = request_refund(order_number=order.number, actor=manager, amount="3.00", reason="other")
    fake_gateway.refund_status = "succeeded"

    report = reconcile_pending_refunds(older_than=NOW, gateway=fake_gateway)

    refund.refresh_from_db()
    assert refund.status == "pending" and report.still_unknown == [refund.pk]
    assert refund.attempts == 6 and not fake_gateway.refunds


def test_given_recent_pending_refund_then_reconciliation_leaves_it_to_its_request(
    fake_gateway, manager
):
    fake_gateway.refund_status = "pending"
    order = paid_order(fake_gateway)
    request_refund(order_number=order.number, actor=manager, amount="3.00", reason="other")

    report = reconcile_pending_refunds(older_than=timedelta(minutes=5), gateway=fake_gateway)

    assert report.checked == 0


def test_reconcile_refunds_command_reports_what_it_did(fake_gateway, manager):
    order = paid_order(fake_gateway)
    request_refund(
        order_number=order.number,
        actor=manager,
        amount="3.00",
        reason="other",
        gateway=AlwaysLost(fake_gateway),
    )
    out = StringIO()

    call_command("reconcile_refunds", "--older-than", "0", stdout=out)  # alias of reconcile --fix

    assert "1 difference(s), 1 fixed, 0 remaining" in out.getvalue()
    assert Refund.objects.get().status == "succeeded"
