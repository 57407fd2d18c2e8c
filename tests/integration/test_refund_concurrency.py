"""Refunds racing on PostgreSQL: row locks keep refunded <= paid and every refund is sent once.

Each thread has its own database connection (closed at the end); they all start together at a
barrier. The fake gateway serves them one at a time, as Stripe does, and checks over-refunds
too, so a refund our locks let through by mistake would show up as a refusal there.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.rules import RefundExceedsRefundable
from shopkeeper.refunds.services import request_refund
from tests.factories import paid_order, staff, token_for
from tests.fakes import GatewayInBetween
from tests.integration.refund_fixtures import Api, refunded_minor
from tests.racing import race

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20


@pytest.fixture(autouse=True)
def fast(settings):
    settings.SHOPKEEPER_IDEMPOTENCY_WAIT_SECONDS = 30


def sent_keys(gateway) -> list[str]:
    return [key for op, key in gateway.calls if op == "create_refund"]


@pytest.mark.parametrize("stripe_status", ["succeeded", "pending"])
def test_given_20_concurrent_partial_refunds_over_the_total_then_refunded_never_exceeds_paid(
    fake_gateway, stripe_status
):
    fake_gateway.refund_status = stripe_status
    order = paid_order(fake_gateway)  # 25.00 USD paid
    manager = staff("manager")

    results = race(
        THREADS,
        lambda i: request_refund(
            order_number=order.number, actor=manager, amount="3.00", reason="other"
        ),
    )

    accepted = [r for r in results if isinstance(r, Refund)]
    refused = [r for r in results if isinstance(r, RefundExceedsRefundable)]
    assert len(accepted) + len(refused) == THREADS, [r for r in results if r not in accepted]
    assert len(accepted) == 8  # 8 x 3.00 = 24.00 <= 25.00 < 27.00
    assert all(r.status == stripe_status for r in accepted)
    # Exactly one Stripe refund per accepted request, none for a refused one.
    keys = sent_keys(fake_gateway)
    assert sorted(keys) == sorted(r.idempotency_key for r in accepted)
    assert len(fake_gateway.refunds) == 8
    assert Refund.objects.filter(order=order).count() == 8
    total = 2400 if stripe_status == "succeeded" else 0
    assert refunded_minor(order) == total <= 2500
    expected = "partially_refunded" if stripe_status == "succeeded" else "paid"
    assert Order.objects.get(pk=order.pk).payment_status == expected


def test_given_concurrent_refunds_of_varied_amounts_then_sum_accepted_within_paid(fake_gateway):
    order = paid_order(fake_gateway, items={"MUG": 5})  # 55.00 USD
    owner = staff("owner")
    amounts = [f"{(i % 7) + 1}.{i:02d}" for i in range(THREADS)]  # 1.00 .. 7.19: ~85 in all

    results = race(
        THREADS,
        lambda i: request_refund(
            order_number=order.number, actor=owner, amount=amounts[i], reason="other"
        ),
    )

    accepted = [r for r in results if isinstance(r, Refund)]
    assert all(isinstance(r, Refund | RefundExceedsRefundable) for r in results), results
    assert sum(r.amount_minor for r in accepted) == refunded_minor(order) <= 5500
    assert len(sent_keys(fake_gateway)) == len(set(sent_keys(fake_gateway))) == len(accepted)
    # What is refundable only shrinks here, so every refusal must still be right at the end.
    left = 5500 - refunded_minor(order)
    refused = [a for a, r in zip(amounts, results, strict=True) if not isinstance(r, Refund)]
    assert all(int(a.replace(".", "")) > left for a in refused)


def test_given_20_concurrent_api_requests_with_one_key_then_one_refund(fake_gateway):
    order = paid_order(fake_gateway)
    token = token_for(staff("manager"))
    body = {"amount": "5.00", "reason": "requested_by_customer"}

    responses = race(THREADS, lambda i: Api(token).refund(order.number, body, key="dialog-42"))

    assert all(not isinstance(r, BaseException) for r in responses), responses
    assert [r.status_code for r in responses] == [201] * THREADS
    bodies = [r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies)
    assert sum(1 for r in responses if not r.has_header("Idempotent-Replayed")) == 1
    assert Refund.objects.filter(order=order).count() == 1
    assert len(sent_keys(fake_gateway)) == 1 and len(fake_gateway.refunds) == 1
    assert refunded_minor(order) == 500


def test_given_20_concurrent_api_requests_with_distinct_keys_then_each_is_its_own_refund(
    fake_gateway,
):
    order = paid_order(fake_gateway)
    token = token_for(staff("manager"))

    responses = race(
        THREADS,
        lambda i: Api(token).refund(
            order.number, {"amount": "1.00", "reason": "other"}, key=f"k{i}"
        ),
    )

    assert [r.status_code for r in responses] == [201] * THREADS
    assert Refund.objects.filter(order=order).count() == THREADS
    assert refunded_minor(order) == 2000


def test_given_response_lost_after_refund_made_under_concurrency_then_one_refund_each(
    fake_gateway,
):
    """Lost answers are not resent while they may be in flight; reconciliation then finds each
    refund by its key: nothing is refunded twice."""
    from datetime import timedelta

    from shopkeeper.reconciliation.services import reconcile

    order = paid_order(fake_gateway)
    manager = staff("manager")
    lose_every_first_answer = LosingFirstAnswers(fake_gateway)

    results = race(
        5,
        lambda i: request_refund(
            order_number=order.number,
            actor=manager,
            amount="2.00",
            reason="other",
            gateway=lose_every_first_answer,
        ),
    )
    assert all(isinstance(r, Refund) and r.status == "pending" for r in results), results
    report = reconcile(order_number=order.number, fix=True, in_flight=timedelta(0))

    assert report.exit_code == 0, report.as_text()
    assert {r.status for r in Refund.objects.filter(order=order)} == {"succeeded"}
    assert len(fake_gateway.refunds) == 5
    assert LedgerEntry.objects.filter(order=order, kind="refund").count() == 5
    assert refunded_minor(order) == 1000
    keys = sent_keys(fake_gateway)
    assert len(keys) == 5 and len(set(keys)) == 5  # each key sent once, refunded once


class LosingFirstAnswers(GatewayInBetween):
    """The first answer for each idempotency key is lost after Stripe made the refund."""

    def __init__(self, gateway: Any) -> None:
        super().__init__(gateway)
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def create_refund(self, **kwargs: Any) -> Any:
        from shopkeeper.errors import PaymentOutcomeUnknown

        snapshot = self._gateway.create_refund(**kwargs)
        with self._lock:
            first = kwargs["idempotency_key"] not in self._seen
            self._seen.add(kwargs["idempotency_key"])
        if first:
            raise PaymentOutcomeUnknown("connection reset after the request was sent")
        return snapshot


def test_given_a_pending_refund_when_processes_resend_it_at_once_then_one_send(fake_gateway):
    """The send is claimed in the database: of many processes (requests, reconcile runs) that
    find the same refund due for a resend, one sends and the others leave it in flight."""
    from django.utils import timezone

    from shopkeeper.errors import PaymentOutcomeUnknown
    from shopkeeper.refunds.services import execute_refund

    order = paid_order(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [PaymentOutcomeUnknown("503", in_flight=False)] * 3
    refund = request_refund(
        order_number=order.number, actor=staff("manager"), amount="2.00", reason="other"
    )
    assert refund.status == "pending" and len(sent_keys(fake_gateway)) == 3
    due = timezone.now()  # its window is over for every process below

    results = race(10, lambda i: execute_refund(refund_id=refund.pk, in_flight_after=due))

    assert all(isinstance(r, Refund) for r in results), results
    assert len(sent_keys(fake_gateway)) == 4  # one more send, not ten
    assert Refund.objects.get(pk=refund.pk).status == "succeeded"
    assert refunded_minor(order) == 200
