"""PostgreSQL, two connections: a cancel racing a capture on one authorised order ends in one
consistent state: either voided and cancelled, or captured and paid, never a mix. The second
request is refused while the first is under way at Stripe (`orders.operations`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.orders.models import Order
from shopkeeper.orders.operations import OperationInProgress
from shopkeeper.orders.services import cancel_order, capture_order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.provider import use_gateway
from shopkeeper.payments.selectors import order_balance
from tests.factories import authorised_order, staff
from tests.fakes import GatewayInBetween

pytestmark = pytest.mark.django_db(transaction=True)


class HeldAtStripe(GatewayInBetween):
    """The fake Stripe, holding the first capture or cancel until the test lets it go."""

    def __init__(self, gateway: Any) -> None:
        super().__init__(gateway)
        self.arrived = threading.Event()
        self.go = threading.Event()

    def _held(self, call: Callable[[], Any]) -> Any:
        self.arrived.set()
        assert self.go.wait(timeout=20)
        return call()

    def capture_payment_intent(self, *args: Any, **kwargs: Any) -> Any:
        return self._held(lambda: self._gateway.capture_payment_intent(*args, **kwargs))

    def cancel_payment_intent(self, *args: Any, **kwargs: Any) -> Any:
        return self._held(lambda: self._gateway.cancel_payment_intent(*args, **kwargs))


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


@pytest.mark.parametrize("first", ["cancel", "capture"])
def test_given_authorised_order_when_cancel_races_capture_then_the_second_waits_its_turn(
    fake_gateway, settings, first
):
    """Both requests validate the authorised order; the first claims it before calling Stripe,
    so the second, arriving while Stripe works on the first, is refused with 409
    `operation_in_progress` and never reaches Stripe: one consistent outcome, whatever an
    emulator would have accepted."""
    order = authorised_order(fake_gateway, price="10.50", stock=10)
    manager = staff("manager")
    held = HeldAtStripe(fake_gateway)
    cancel = lambda: cancel_order(order_number=order.number, reason="race", actor=manager)  # noqa: E731
    capture = lambda: capture_order(order_number=order.number, amount="10.00", actor=manager)  # noqa: E731
    one, other = (cancel, capture) if first == "cancel" else (capture, cancel)

    with use_gateway(held):
        results: list[Any] = []
        thread = threading.Thread(target=lambda: results.extend(run_together(one)))
        thread.start()
        assert held.arrived.wait(timeout=20)
        refused = run_together(other)[0]
        held.go.set()
        thread.join(timeout=30)

    assert isinstance(refused, OperationInProgress), refused
    assert refused.code == "operation_in_progress" and refused.extra["operation"] == first
    assert isinstance(results[0], Order), results
    calls = [op for op, _ in fake_gateway.calls if op.endswith("_payment_intent")]
    assert f"{'cancel' if first == 'capture' else 'capture'}_payment_intent" not in calls
    final = Order.objects.get(pk=order.pk)
    kinds = sorted(LedgerEntry.objects.filter(order=order).values_list("kind", flat=True))
    balance = order_balance(final)
    assert (final.operation, final.operation_key) == ("", "")
    if first == "cancel":
        assert (final.status, final.payment_status) == ("cancelled", "voided")
        assert kinds == ["authorization", "void"] and balance.captured == 0
    else:
        assert (final.status, final.payment_status) == ("processing", "paid")
        assert kinds == ["authorization", "capture", "release"]
        assert (balance.captured, balance.released) == (1000, 1600)


class SameCallsTogether(GatewayInBetween):
    """The fake Stripe, with two identical calls released at the same moment."""

    def __init__(self, gateway: Any) -> None:
        super().__init__(gateway)
        self._barrier = threading.Barrier(2, timeout=20)

    def capture_payment_intent(self, *args: Any, **kwargs: Any) -> Any:
        self._barrier.wait()
        return self._gateway.capture_payment_intent(*args, **kwargs)

    def cancel_payment_intent(self, *args: Any, **kwargs: Any) -> Any:
        self._barrier.wait()
        return self._gateway.cancel_payment_intent(*args, **kwargs)


def test_given_a_double_clicked_capture_then_one_capture_one_audit_both_answered(
    fake_gateway, settings
):
    order = authorised_order(fake_gateway, price="10.50", stock=10)
    manager = staff("manager")

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
    order = authorised_order(fake_gateway, price="10.50", stock=10)
    support = staff("support")

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
