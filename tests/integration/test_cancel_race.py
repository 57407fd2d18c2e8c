"""PostgreSQL, two connections: a cancel racing a capture on one authorised order ends in one
consistent state: either voided and cancelled, or captured and paid, never a mix."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.errors import Conflict
from shopkeeper.orders.models import Order
from shopkeeper.orders.services import cancel_order, capture_order
from shopkeeper.payments.gateway import use_gateway
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.selectors import order_balance
from tests.integration.orders_admin_fixtures import intent_id, make_staff, place

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class BothReachStripeTogether:
    """The fake Stripe, but capture and cancel wait for each other before going through.

    So each request has validated the order under its lock before either reaches Stripe: the
    race the three-step design must survive. Stripe then takes `first`'s call first, and the
    other right after it, while the first request is still recording its outcome.
    """

    def __init__(self, gateway: Any, first: str) -> None:
        self._gateway = gateway
        self._first = first
        self._barrier = threading.Barrier(2, timeout=20)
        self._first_done = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gateway, name)

    def _in_turn(self, operation: str, call: Callable[[], Any]) -> Any:
        self._barrier.wait()
        if operation != self._first:
            assert self._first_done.wait(timeout=20)
            return call()
        try:
            return call()
        finally:
            self._first_done.set()

    def capture_payment_intent(self, *args: Any, **kwargs: Any) -> Any:
        return self._in_turn(
            "capture", lambda: self._gateway.capture_payment_intent(*args, **kwargs)
        )

    def cancel_payment_intent(self, *args: Any, **kwargs: Any) -> Any:
        return self._in_turn("cancel", lambda: self._gateway.cancel_payment_intent(*args, **kwargs))


def run_together(*work: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * len(work)

    def run(index: int) -> None:
        try:
            results[index] = work[index]()
        except Exception as error:  # collected and asserted on by the test
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("first", ["cancel", "capture", "cancel", "capture"])
def test_given_authorised_order_when_cancel_races_capture_then_one_consistent_outcome(
    fake_gateway, settings, first
):
    order = place(fake_gateway, settings, capture="manual", pay=True)
    manager = make_staff("manager")
    racing = BothReachStripeTogether(fake_gateway, first)

    with use_gateway(racing):
        cancelled, captured = run_together(
            lambda: cancel_order(order_number=order.number, reason="race", actor=manager),
            lambda: capture_order(order_number=order.number, amount="10.00", actor=manager),
        )

    outcomes = [r for r in (cancelled, captured) if isinstance(r, Order)]
    refusals = [r for r in (cancelled, captured) if isinstance(r, Exception)]
    assert len(outcomes) == 1 and len(refusals) == 1, (cancelled, captured)
    assert isinstance(refusals[0], Conflict), refusals[0]
    final = Order.objects.get(pk=order.pk)
    kinds = sorted(LedgerEntry.objects.filter(order=order).values_list("kind", flat=True))
    stripe_status = fake_gateway.intents[intent_id(order)].status
    balance = order_balance(final)
    assert isinstance(cancelled if first == "cancel" else captured, Order)
    if isinstance(cancelled, Order):
        assert refusals[0].code == "order_not_capturable"
        assert (final.status, final.payment_status, stripe_status) == (
            "cancelled",
            "voided",
            "canceled",
        )
        assert kinds == ["authorization", "void"] and balance.captured == 0
    else:
        assert refusals[0].code == "order_paid_refund_first"
        assert (final.status, final.payment_status, stripe_status) == (
            "processing",
            "paid",
            "succeeded",
        )
        assert kinds == ["authorization", "capture", "release"]
        assert (balance.captured, balance.released) == (1000, 1600)


class SameCallsTogether:
    """The fake Stripe, with two identical calls released at the same moment."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway
        self._barrier = threading.Barrier(2, timeout=20)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gateway, name)

    def capture_payment_intent(self, *args: Any, **kwargs: Any) -> Any:
        self._barrier.wait()
        return self._gateway.capture_payment_intent(*args, **kwargs)

    def cancel_payment_intent(self, *args: Any, **kwargs: Any) -> Any:
        self._barrier.wait()
        return self._gateway.cancel_payment_intent(*args, **kwargs)


def test_given_a_double_clicked_capture_then_one_capture_one_audit_both_answered(
    fake_gateway, settings
):
    order = place(fake_gateway, settings, capture="manual", pay=True)
    manager = make_staff("manager")

    with use_gateway(SameCallsTogether(fake_gateway)):
        results = run_together(
            *[
                lambda: capture_order(order_number=order.number, amount="10.00", actor=manager)
                for _ in range(2)
            ]
        )

    assert all(isinstance(r, Order) for r in results), results
    assert sorted(LedgerEntry.objects.filter(order=order).values_list("kind", flat=True)) == [
        "authorization",
        "capture",
        "release",
    ]
    assert AuditEntry.objects.filter(action="order.captured").count() == 1
    assert Order.objects.get(pk=order.pk).payment_status == "paid"


def test_given_a_double_clicked_cancel_then_cancelled_once_and_stock_back_once(
    fake_gateway, settings
):
    order = place(fake_gateway, settings, capture="manual", pay=True)
    support = make_staff("support")

    with use_gateway(SameCallsTogether(fake_gateway)):
        results = run_together(
            *[
                lambda: cancel_order(order_number=order.number, reason="x", actor=support)
                for _ in range(2)
            ]
        )

    assert sorted(type(r).__name__ for r in results) == ["Order", "OrderNotCancellable"]
    assert Product.objects.get(sku="MUG").stock == 10
    assert AuditEntry.objects.filter(action="order.cancelled").count() == 1
    assert list(LedgerEntry.objects.filter(order=order).values_list("kind", flat=True)) == [
        "authorization",
        "void",
    ]
