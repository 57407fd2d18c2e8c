"""A capture/cancel/refund storm on PostgreSQL against a real localstripe, through the API.

Each round authorises one 25.00 order and sends 30 requests at it at once from 30 threads,
each with its own connection: full and partial captures, cancels and refunds. localstripe, like
an attacker's emulator, accepts both a capture and a cancel of one PaymentIntent; real Stripe
refuses the second, and we must not depend on it. After every round:

- Stripe was never asked to both capture and cancel the authorisation, and the ledger never
  holds both a capture and a void;
- refunded never exceeds captured, and the order's statuses agree with its ledger;
- stock is back exactly when the order was cancelled;
- no request got a 5xx.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from shopkeeper.catalog.models import Product
from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.provider import use_gateway
from shopkeeper.payments.selectors import order_balance
from tests.factories import (
    authorised_order,
    staff,
    token_for,
)
from tests.fakes import GatewayInBetween

pytestmark = [
    pytest.mark.localstripe,
    pytest.mark.django_db(transaction=True),
]

ROUNDS = 20
REQUESTS = 30
STOCK = 100


class CountingGateway(GatewayInBetween):
    """The gateway, counting the captures and cancels Stripe accepted, per PaymentIntent."""

    def __init__(self, gateway: Any) -> None:
        super().__init__(gateway)
        self._lock = threading.Lock()
        self.accepted: Counter[tuple[str, str]] = Counter()

    def _count(self, operation: str, intent_id: str, call: Any) -> Any:
        result = call()
        with self._lock:
            self.accepted[(operation, intent_id)] += 1
        return result

    def capture_payment_intent(self, intent_id: str, **kwargs: Any) -> Any:
        return self._count(
            "capture", intent_id, lambda: self._gateway.capture_payment_intent(intent_id, **kwargs)
        )

    def cancel_payment_intent(self, intent_id: str, **kwargs: Any) -> Any:
        return self._count(
            "cancel", intent_id, lambda: self._gateway.cancel_payment_intent(intent_id, **kwargs)
        )


def storm_requests(number: str, round_no: int) -> list[tuple[str, dict[str, Any]]]:
    """30 requests: captures in full and in part, cancels, refunds of several amounts."""
    orders = f"/api/admin/orders/{number}"
    work: list[tuple[str, dict[str, Any]]] = []
    work += [(f"{orders}/capture", {})] * 6
    work += [(f"{orders}/capture", {"amount": "15.00"})] * 6
    work += [(f"{orders}/cancel", {"reason": "storm"})] * 8
    work += [
        (f"{orders}/refunds", {"amount": amount, "reason": "other"})
        for amount in ("5.00", "10.00", "2.50", "25.00", "7.00") * 2
    ]
    random.Random(round_no).shuffle(work)
    return work


def send_all(token: str, work: list[tuple[str, dict[str, Any]]], round_no: int) -> list[Any]:
    barrier = threading.Barrier(len(work))
    answers: list[Any] = [None] * len(work)
    jitter = random.Random(1000 + round_no)
    delays = [jitter.uniform(0, 0.03) for _ in work]

    def run(index: int) -> None:
        path, body = work[index]
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        if path.endswith("/refunds"):
            headers["HTTP_IDEMPOTENCY_KEY"] = f"storm-{round_no}-{index}"
        try:
            client = Client()
            barrier.wait(timeout=30)
            time.sleep(delays[index])
            response = client.post(path, body, content_type="application/json", **headers)
            answers[index] = (path, response.status_code, response.json())
        except BaseException as error:  # reported by the assertions below
            answers[index] = (path, 599, repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return answers


def assert_consistent(order: Order, intent_id: str, counting: CountingGateway) -> None:
    order = Order.objects.get(pk=order.pk)
    kinds = Counter(LedgerEntry.objects.filter(order=order).values_list("kind", flat=True))
    balance = order_balance(order)
    both_at_stripe = (
        counting.accepted[("capture", intent_id)] and counting.accepted[("cancel", intent_id)]
    )
    assert not both_at_stripe, ("Stripe both captured and cancelled", counting.accepted)
    assert not (kinds["capture"] and kinds["void"]), ("capture and void on the ledger", kinds)
    assert balance.refunded <= balance.captured, balance
    stock = Product.objects.get(sku="MUG").stock
    outstanding = sum(line.quantity - line.restocked_quantity for line in order.lines.all())
    if order.status == "cancelled":
        # Voided before any capture, or captured, refunded in full, then cancelled.
        ended = (order.payment_status, balance.captured, balance.refunded)
        assert ended in (("voided", 0, 0), ("refunded", 2500, 2500), ("refunded", 1500, 1500)), (
            ended,
            kinds,
        )
        assert (stock, outstanding) == (STOCK, 0)
    else:
        assert order.payment_status in ("paid", "partially_refunded", "refunded"), order
        assert balance.captured in (1500, 2500) and not kinds["void"], kinds
        assert (stock, outstanding) == (STOCK - 2, 2)


def test_given_an_authorised_order_when_30_money_requests_storm_it_then_books_stay_possible(
    localstripe_gateway, settings
):
    settings.SHOPKEEPER_IDEMPOTENCY_WAIT_SECONDS = 30
    token = token_for(staff("owner"))
    counting = CountingGateway(localstripe_gateway)
    statuses: Counter[int] = Counter()
    codes: Counter[str] = Counter()
    with use_gateway(counting):
        for round_no in range(ROUNDS):
            Product.objects.filter(sku="MUG").update(stock=STOCK)
            order = authorised_order(localstripe_gateway, stock=STOCK)  # 25.00 USD authorised
            intent_id = order.payments.get().intent_id
            answers = send_all(token, storm_requests(order.number, round_no), round_no)
            statuses.update(status for _, status, _ in answers)
            codes.update(body.get("code", "") for _, status, body in answers if status == 409)
            failures = [answer for answer in answers if answer[1] >= 500]
            assert not failures, failures
            assert_consistent(order, intent_id, counting)
    # The storm did exercise both outcomes' refusals and the successes.
    assert statuses[200] and statuses[201] and codes["operation_in_progress"], (statuses, codes)
