"""Reconciliation against a real localstripe through the real Stripe SDK.

Refunds are made directly at localstripe (as staff would in the Stripe Dashboard), answers are
lost, requests never arrive, captures happen behind our back; after `reconcile --fix` the ledger
equals what localstripe holds, and a second run finds nothing. localstripe books the uncaptured
rest of a partial capture as a refund of the charge: that must never be recorded as one.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from shopkeeper.audit.models import AuditEntry
from shopkeeper.demo.localstripe_server import flush
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.orders.models import Order
from shopkeeper.orders.services import capture_order
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.payments.services import sync_from_stripe
from shopkeeper.reconciliation.services import reconcile
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.services import execute_refund
from tests.factories import new_order, paid_order, requested_refund
from tests.fakes import AlwaysLost, GatewayInBetween

# One request per refund (no retry): localstripe ignores idempotency keys, so our retries of a
# lost answer would make a second refund there (Stripe would replay the first; see the last test).
pytestmark = [
    pytest.mark.localstripe,
    pytest.mark.django_db,
    pytest.mark.refund_retry_delays(),
]


class NeverArrives(GatewayInBetween):
    """The refund request never reaches Stripe (connection refused every time)."""

    def create_refund(self, **kwargs):
        raise PaymentOutcomeUnknown("connection refused", in_flight=False)


def intent_of(order: Order) -> str:
    return Payment.objects.get(order=order).intent_id


def stripe_refunds(gateway, order: Order) -> dict[str, int]:
    """Money refunded at Stripe, by refund id (localstripe's capture remainder excluded)."""
    return {
        refund.id: refund.amount
        for refund in gateway.list_refunds(intent_of(order))
        if refund.status == "succeeded" and refund.payment_intent_id
    }


def ledger_refunds(order: Order) -> dict[str, int]:
    rows = LedgerEntry.objects.filter(order=order, kind="refund")
    return dict(rows.values_list("stripe_refund_id", "amount_minor"))


def ledger(order: Order) -> list[tuple[str, int]]:
    rows = LedgerEntry.objects.filter(order=order).exclude(kind="refund")
    return sorted(rows.values_list("kind", "amount_minor"))


def run(*args: str) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("reconcile", "--json", *args, stdout=out)
        status = 0
    except Exception as error:  # CommandError carries the exit status
        status = getattr(error, "returncode", -1)
    return status, json.loads(out.getvalue())


def test_given_dashboard_refunds_and_refunds_in_doubt_when_fixed_then_ledger_equals_stripe(
    localstripe_url, localstripe_gateway, dashboard, manager
):
    flush(localstripe_url)  # the whole account is listed: only this test's PaymentIntents
    order = paid_order(localstripe_gateway)  # 25.00 USD
    dashboard.v1.refunds.create(params={"payment_intent": intent_of(order), "amount": 400})
    lost = requested_refund(
        order,
        actor=manager,
        amount="3.00",
        reason="other",
        gateway=AlwaysLost(localstripe_gateway),
    )
    never_sent = requested_refund(
        order,
        actor=manager,
        amount="2.00",
        reason="other",
        gateway=NeverArrives(localstripe_gateway),
    )
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Refund.objects.filter(pk=never_sent.pk).update(updated_at=an_hour_ago, last_sent_at=an_hour_ago)
    assert len(stripe_refunds(localstripe_gateway, order)) == 2 and ledger_refunds(order) == {}

    status, found = run()
    assert status == 1 and sorted(d["kind"] for d in found["differences"]) == [
        "refund_in_doubt",
        "refund_missing_here",
        "refund_not_sent",
    ]
    assert ledger_refunds(order) == {}  # a report changes nothing

    status, fixed = run("--fix")

    assert status == 0 and fixed["fixed"] == 3 and fixed["remaining"] == 0
    at_stripe = stripe_refunds(localstripe_gateway, order)
    assert sorted(at_stripe.values()) == [200, 300, 400]
    assert ledger_refunds(order) == at_stripe
    assert {r.status for r in Refund.objects.filter(order=order)} == {"succeeded"}
    assert Order.objects.get(pk=order.pk).payment_status == "partially_refunded"
    lost.refresh_from_db()
    assert lost.stripe_refund_id in at_stripe
    settled = AuditEntry.objects.filter(action="order.refund.succeeded")
    assert {entry.details["source"] for entry in settled} >= {"reconciliation"}
    status, again = run("--fix")
    assert (status, again["differences"]) == (0, [])
    assert stripe_refunds(localstripe_gateway, order) == at_stripe  # nothing sent twice


def authorise(dashboard, order: Order) -> None:
    intent_id = intent_of(order)
    dashboard.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    assert dashboard.v1.payment_intents.confirm(intent_id).status == "requires_capture"
    sync_from_stripe(intent_id)


def test_given_partial_capture_then_localstripes_remainder_refund_is_not_recorded(
    localstripe_gateway, dashboard, settings, manager
):
    order = new_order(price="10.50", stock=50, capture="manual")  # 26.00 USD
    authorise(dashboard, order)
    capture_order(order_number=order.number, amount="20.00", actor=manager)
    remainder = [r for r in localstripe_gateway.list_refunds(intent_of(order))]
    assert [(r.amount, r.payment_intent_id) for r in remainder] == [(600, "")]

    status, report = run("--order", order.number, "--fix")

    assert (status, report["differences"]) == (0, [])
    assert not Refund.objects.exists()
    assert ledger(order) == [("authorization", 2600), ("capture", 2000), ("release", 600)]


def test_given_capture_and_refund_made_behind_our_back_then_recorded_as_stripe_shows(
    localstripe_gateway, dashboard, settings
):
    order = new_order(price="10.50", stock=50, capture="manual")  # 26.00 USD
    authorise(dashboard, order)
    intent_id = intent_of(order)
    dashboard.v1.payment_intents.capture(intent_id, params={"amount_to_capture": 2000})
    dashboard.v1.refunds.create(params={"payment_intent": intent_id, "amount": 500})

    status, found = run("--order", order.number)
    assert status == 1
    assert {(d["kind"], d["subject"]) for d in found["differences"]} == {
        ("intent_status", ""),
        ("movement_missing", "capture"),
        ("movement_missing", "release"),
        ("refund_missing_here", found["differences"][-1]["subject"]),
    }

    status, fixed = run("--order", order.number, "--fix")

    assert status == 0 and fixed["remaining"] == 0
    # Captured 20.00 (not localstripe's 26.00 - 6.00 - 5.00), the rest released, one refund.
    assert ledger(order) == [("authorization", 2600), ("capture", 2000), ("release", 600)]
    assert ledger_refunds(order) == stripe_refunds(localstripe_gateway, order)
    assert list(ledger_refunds(order).values()) == [500]
    assert Order.objects.get(pk=order.pk).payment_status == "partially_refunded"
    assert run("--order", order.number)[1]["differences"] == []


def test_given_more_than_a_page_of_payment_intents_then_since_pages_through_them_all(
    localstripe_url, localstripe_gateway, dashboard
):
    flush(localstripe_url)
    orders = [paid_order(localstripe_gateway) for _ in range(3)]
    for _ in range(105):  # another shop on the same account: a PaymentIntent with no order
        dashboard.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})
    dashboard.v1.refunds.create(params={"payment_intent": intent_of(orders[-1]), "amount": 100})

    report = reconcile(since=timezone.now().date(), fix=True)

    assert (report.checked, report.skipped, report.exit_code) == (3, 105, 0)
    assert [difference.order_number for difference in report.fixed] == [orders[-1].number]
    # Two pages of PaymentIntents, one of charges, one of refunds (localstripe has no
    # disputes to ask for), then the one that differs read on its own: the PaymentIntent, its
    # charges, refunds and (none at localstripe) disputes.
    assert report.stripe_requests == 2 + 1 + 1 + 4


def test_given_two_refunds_at_stripe_under_one_key_then_one_recorded_and_the_other_for_a_person(
    localstripe_gateway, settings, manager
):
    order = paid_order(localstripe_gateway)
    refund = requested_refund(
        order,
        actor=manager,
        amount="3.00",
        reason="other",
        gateway=AlwaysLost(localstripe_gateway),
    )
    # Sent again once its in-flight window is over: localstripe ignores the key, a twin.
    execute_refund(
        refund_id=refund.pk, gateway=AlwaysLost(localstripe_gateway), in_flight_after=timezone.now()
    )
    assert len(stripe_refunds(localstripe_gateway, order)) == 2

    status, report = run("--order", order.number, "--fix")

    assert status == 1 and report["fixed"] == 1
    (duplicate,) = [d for d in report["differences"] if not d["fixed"]]
    assert duplicate["kind"] == "refund_missing_here" and duplicate["fix"] == "none"
    assert duplicate["ours"].startswith("a second refund under the key of refund")
    assert list(ledger_refunds(order).values()) == [300]  # never recorded twice
