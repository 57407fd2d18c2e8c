"""`reconcile` over many PaymentIntents: Stripe's lists instead of one read per PaymentIntent,
our books read in chunks instead of one query per payment, and a difference seen in bulk read
again on its own before it is reported (FakeGateway; each page it serves is one request)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.reconciliation.services import reconcile
from shopkeeper.refunds.services import request_refund
from tests.factories import paid_order, staff

pytestmark = pytest.mark.django_db

LISTS = ("list_payment_intents", "list_account_charges", "list_account_refunds")
LISTS += ("list_account_disputes",)


def paid_orders(fake_gateway, count: int, *, days_ago: int = 0) -> list[Order]:
    """`count` paid orders as checkout and Stripe leave them, copied in bulk from one real one
    (a thousand through checkout would take the test most of a minute)."""
    model = paid_order(fake_gateway)
    payment = Payment.objects.get(order=model)
    entries = list(LedgerEntry.objects.filter(payment=payment))
    intent = fake_gateway.intents[payment.intent_id]
    then = timezone.now() - timedelta(days=days_ago)
    orders = Order.objects.bulk_create(
        replace_row(model, number=f"{model.number}-{i:04d}", created_at=then)
        for i in range(count - 1)
    )
    payments = Payment.objects.bulk_create(
        replace_row(payment, order=order, intent_id=f"{payment.intent_id}_{i:04d}", created_at=then)
        for i, order in enumerate(orders)
    )
    LedgerEntry.objects.bulk_create(
        replace_row(
            entry,
            order=copy.order,
            payment=copy,
            external_id=entry.external_id.replace(payment.intent_id, copy.intent_id),
            stripe_payment_intent_id=copy.intent_id,
        )
        for copy in payments
        for entry in entries
    )
    for copy in payments:
        fake_gateway.intents[copy.intent_id] = replace(
            intent,
            id=copy.intent_id,
            order_number=copy.order.number,
            created=int(then.timestamp()),
        )
    Payment.objects.filter(pk=payment.pk).update(created_at=then)
    Order.objects.filter(pk=model.pk).update(created_at=then)
    fake_gateway.intents[intent.id] = replace(intent, created=int(then.timestamp()))
    return [model, *orders]


def replace_row(row, **fields):
    """A copy of a model row, not saved yet, with `fields` changed."""
    copy = type(row)(**{f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields})
    copy.pk = None
    for name, value in fields.items():
        setattr(copy, name, value)
    return copy


def requests(fake_gateway) -> dict[str, int]:
    counted: dict[str, int] = {}
    for operation, _ in fake_gateway.calls:
        counted[operation] = counted.get(operation, 0) + 1
    return counted


def test_given_1000_payments_then_about_one_request_per_100_and_no_query_per_payment(
    fake_gateway,
):
    paid_orders(fake_gateway, 1000)
    fake_gateway.calls.clear()

    with CaptureQueriesContext(connection) as queries:
        report = reconcile()

    # 10 pages of PaymentIntents, 10 of charges, one (empty) of refunds and one of disputes;
    # before, 1 + 10 + 3 x 1,000 reads.
    assert requests(fake_gateway) == dict(zip(LISTS, (10, 10, 1, 1), strict=True))
    assert report.stripe_requests == 22 <= 101
    assert (report.checked, report.findings, report.exit_code) == (1000, [], 0)
    # Our side in chunks of 500: a handful of queries each (before: six per payment).
    assert len(queries) <= 30, [q["sql"][:80] for q in queries.captured_queries]


def test_given_differences_in_bulk_then_only_those_payment_intents_are_read_again(fake_gateway):
    orders = paid_orders(fake_gateway, 250)
    for order in orders[:3]:
        fake_gateway.refund_outside(Payment.objects.get(order=order).intent_id, 100)
    fake_gateway.calls.clear()

    report = reconcile(fix=True)

    counted = requests(fake_gateway)
    assert [counted[name] for name in LISTS] == [3, 3, 1, 1]
    # Each of the three read again on its own: the PaymentIntent, its charges, refunds, disputes.
    assert counted["retrieve_payment_intent"] == counted["list_refunds"] == 3
    assert report.stripe_requests == 8 + 3 * 4
    assert (report.checked, len(report.fixed), report.exit_code) == (250, 3, 0)


def test_given_since_then_stripe_lists_from_that_moment_and_the_index_finds_our_payments(
    fake_gateway,
):
    old = paid_orders(fake_gateway, 300, days_ago=10)
    new = paid_order(fake_gateway)
    fake_gateway.refund_outside(Payment.objects.get(order=old[0]).intent_id, 100)  # news today
    fake_gateway.calls.clear()

    report = reconcile(since=timezone.now() - timedelta(hours=24))

    assert [requests(fake_gateway)[name] for name in LISTS] == [1, 1, 1, 1]
    assert report.checked == 2
    assert {d.order_number for d in report.remaining} == {old[0].number}
    assert new.number not in {d.order_number for d in report.remaining}
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a tiny table: show the index is there
        cursor.execute(
            "EXPLAIN SELECT intent_id FROM payments_payment WHERE created_at >= now() - "
            "interval '1 day'"
        )
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "payment_created_at_idx" in plan


class StaleRefundList:
    """Stripe's account-wide refund list read before a refund of ours was made: it lacks it."""

    def __init__(self, gateway) -> None:
        self._gateway = gateway

    def __getattr__(self, name):
        return getattr(self._gateway, name)

    def list_account_refunds(self, **kwargs):
        for page in self._gateway.list_account_refunds(**kwargs):
            yield [refund for refund in page if not refund.metadata.get("refund_key")]


def test_given_the_lists_older_than_our_books_then_the_fresh_read_finds_nothing(fake_gateway):
    order = paid_order(fake_gateway)
    request_refund(order_number=order.number, actor=staff("manager"), amount="3.00", reason="other")

    report = reconcile(gateway=StaleRefundList(fake_gateway), fix=True)

    assert (report.checked, report.findings, report.exit_code) == (1, [], 0)
    assert ("list_refunds", Payment.objects.get(order=order).intent_id) in fake_gateway.calls
