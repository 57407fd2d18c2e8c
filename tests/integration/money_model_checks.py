"""Pieces of the money-domain state machine (test_money_model.py): amounts staff type, a Stripe
whose answers get lost, the checks of recorded moves against the state tables, and what
shipments and returns must add up to."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from hypothesis import strategies as st

from shopkeeper.audit.models import AuditEntry
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.fulfilment.selectors import line_fulfilment, shipped_quantities
from shopkeeper.orders.models import Order
from shopkeeper.orders.states import OrderStatus, can_move_order
from shopkeeper.payments.gateway import RefundSnapshot
from shopkeeper.payments.states import can_move_payment
from shopkeeper.refunds.rules import can_move_refund
from shopkeeper.returns.states import HOLDING_STATUSES
from tests.fakes import FakeGateway, GatewayInBetween


def decimal_string(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


# Amounts staff type: none (everything), plausible ones, and nonsense that must be refused.
AMOUNTS = st.one_of(
    st.none(),
    st.integers(min_value=-500, max_value=4000).map(decimal_string),
    st.sampled_from(["0", "0.00", "abc", "1.234", "", "1e3", "NaN", "-0.01", "99999999.99"]),
)


def reachable(table: Mapping[Any, frozenset[Any]], start: str, end: str) -> bool:
    """Whether `end` can follow `start` through any number of moves of `table`."""
    status: type[StrEnum] = type(next(iter(table)))
    seen, queue = {status(start)}, deque([status(start)])
    while queue:
        current = queue.popleft()
        if current == end:
            return True
        for following in table[current] - seen:
            seen.add(following)
            queue.append(following)
    return False


def assert_audited_move_allowed(entry: AuditEntry) -> None:
    """A recorded before/after pair is one move of the order, payment or refund table."""
    before, after = entry.before, entry.after
    if not isinstance(before, dict) or not isinstance(after, dict):
        return
    if "payment_status" in before and "payment_status" in after:
        move = (before["payment_status"], after["payment_status"])
        assert can_move_payment(*move), (entry.action, move)
    if "status" in before and "status" in after:
        move = (before["status"], after["status"])
        if entry.action.startswith("order.refund."):
            assert can_move_refund(*move), (entry.action, move)
        elif entry.action.startswith(("order.", "payment.")):
            assert can_move_order(*move), (entry.action, move)


class LostAnswers(GatewayInBetween):
    """Stripe makes the refund (`made`) or never hears of it, and every answer is lost."""

    def __init__(self, gateway: FakeGateway, *, made: bool) -> None:
        super().__init__(gateway)
        self._made = made

    def create_refund(self, **kwargs: Any) -> RefundSnapshot:
        if self._made:
            self._gateway.create_refund(**kwargs)
        raise PaymentOutcomeUnknown("the answer was lost")


def intents_of(gateway: FakeGateway, order: Order) -> list[Any]:
    return [gateway.intents[p.intent_id] for p in order.payments.all()]


def refunds_at_stripe(gateway: FakeGateway, order: Order) -> list[RefundSnapshot]:
    return [r for intent in intents_of(gateway, order) for r in gateway.list_refunds(intent.id)]


def held_by_disputes(gateway: FakeGateway, order: Order) -> int:
    """What Stripe's disputes hold back: open ones, and lost ones for good."""
    return sum(
        d.amount
        for intent in intents_of(gateway, order)
        for d in gateway.list_disputes(intent.id)
        if d.status != "won"
    )


def assert_fulfilment_adds_up(order: Order) -> None:
    """Per line: received back <= asked back (returns not rejected) <= shipped <= ordered; a
    return's refund is within its received units' worth (and the shipping, if it gave that
    back); a closed order has nothing left to ship."""
    shipped = shipped_quantities(order)
    returns = list(order.returns.prefetch_related("lines").select_related("refund"))
    for line in order.lines.all():
        holding = [
            row
            for returned in returns
            if returned.status in HOLDING_STATUSES
            for row in returned.lines.all()
            if row.order_line_id == line.pk
        ]
        received = sum(row.received_quantity for row in holding)
        asked = sum(row.quantity for row in holding)
        assert received <= asked <= shipped.get(line.pk, 0) <= line.quantity, (
            order.number,
            line.sku,
            received,
            asked,
            shipped,
        )
    prices = {line.pk: line.unit_price_minor for line in order.lines.all()}
    for returned in returns:
        if returned.refund is None:
            continue
        worth = sum(
            prices[row.order_line_id] * row.received_quantity for row in returned.lines.all()
        )
        if returned.refund.include_shipping:
            worth += order.shipping_minor
        assert returned.refund.amount_minor <= worth, (order.number, returned.pk)
    if order.status == OrderStatus.CLOSED:
        assert all(facts.left_to_ship == 0 for _, facts in line_fulfilment(order)), order.number
