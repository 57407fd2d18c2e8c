"""Refunds against a real localstripe through the real Stripe SDK.

localstripe accepts over-refunds and ignores Idempotency-Key, so these tests show that our own
checks stop over-refunds and that our keys make one refund per request. To lose a response "on
the wire", the fault proxy (tests/faults/proxy.py) sits between the SDK and localstripe: it plays
Stripe's idempotency layer and drops the connection after localstripe has made the refund,
before the answer reaches us. tests/faults has the other faults.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.stripe.emulator import EmulatorGateway
from shopkeeper.reconciliation.services import reconcile
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.rules import RefundExceedsRefundable
from shopkeeper.refunds.services import request_refund
from tests.factories import paid_order, staff, token_for
from tests.faults.proxy import Fault, StripeFaultProxy
from tests.integration.refund_fixtures import Api, refunded_minor

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db]


def refunds_at_stripe(gateway, order: Order) -> list:
    return gateway.list_refunds(order.payments.get().intent_id)


def test_given_paid_order_when_refunded_in_full_then_one_stripe_refund_and_ledger_matches(
    localstripe_gateway, manager
):
    order = paid_order(localstripe_gateway)
    assert order.payment_status == "paid"

    refund = request_refund(order_number=order.number, actor=manager, reason="duplicate")

    assert refund.status == "succeeded" and refund.stripe_refund_id.startswith("re_")
    (at_stripe,) = refunds_at_stripe(localstripe_gateway, order)
    assert (at_stripe.id, at_stripe.amount) == (refund.stripe_refund_id, 2500)
    assert at_stripe.metadata["refund_key"] == str(refund.key)
    assert refunded_minor(order) == 2500
    assert Order.objects.get(pk=order.pk).payment_status == "refunded"


def test_given_partial_and_repeated_refunds_then_our_check_stops_the_over_refund(
    localstripe_gateway, manager
):
    order = paid_order(localstripe_gateway)
    for amount in ("10.00", "7.50"):
        refund = request_refund(
            order_number=order.number, actor=manager, amount=amount, reason="other"
        )
        assert refund.status == "succeeded"

    with pytest.raises(RefundExceedsRefundable):  # localstripe itself would have accepted it
        request_refund(order_number=order.number, actor=manager, amount="7.51", reason="other")
    last = request_refund(order_number=order.number, actor=manager, reason="other")

    assert last.amount_minor == 750
    amounts = sorted(r.amount for r in refunds_at_stripe(localstripe_gateway, order))
    assert amounts == [750, 750, 1000]
    assert refunded_minor(order) == 2500
    assert Order.objects.get(pk=order.pk).payment_status == "refunded"


def test_given_api_request_repeated_with_its_key_then_localstripe_refunds_once(
    localstripe_gateway,
):
    order = paid_order(localstripe_gateway)
    api = Api(token_for(staff("owner")))
    body = {"amount": "4.00", "reason": "requested_by_customer"}

    first = api.refund(order.number, body, key="dialog-7")
    second = api.refund(order.number, body, key="dialog-7")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert len(refunds_at_stripe(localstripe_gateway, order)) == 1


def test_given_response_lost_on_the_wire_after_the_refund_then_not_resent_and_settled_by_key(
    localstripe_gateway, localstripe_url, manager
):
    """A lost answer may belong to a send still executing: nothing sends it again at once (the
    SDK's retries are off, ours leave it). Reconciliation finds the one refund by its key."""
    order = paid_order(localstripe_gateway)
    with StripeFaultProxy(localstripe_url) as proxy:
        gateway = EmulatorGateway(
            secret_key="sk_test_lossy", webhook_secret="whsec_x", api_base=proxy.url
        )
        proxy.inject(Fault.DROP_RESPONSE, times=1)

        refund = request_refund(
            order_number=order.number,
            actor=manager,
            amount="6.00",
            reason="other",
            gateway=gateway,
        )
        assert (proxy.count(), refund.status, refund.attempts) == (1, "pending", 1)
        report = reconcile(
            order_number=order.number, fix=True, gateway=gateway, in_flight=timedelta(0)
        )

    assert report.exit_code == 0, report.as_text()
    assert proxy.count() == 1  # reconciliation found it by its key: not sent again
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    (at_stripe,) = refunds_at_stripe(localstripe_gateway, order)
    assert at_stripe.id == refund.stripe_refund_id
    entry = LedgerEntry.objects.get(order=order, kind="refund")
    assert (entry.amount_minor, entry.external_id) == (600, at_stripe.id)
    assert Refund.objects.filter(order=order).count() == 1
