"""What may be shipped, and how far an order is fulfilled. Pure Python, no Django, no Stripe.

Per line, units are bought (`quantity`), shipped, refunded (by a refund naming the line) and
returned (received back through a return). A unit refunded *without* a return is a unit the
customer will not get: it is taken off what is left to ship first (a refund before shipping
means "don't send it"); only the rest of such refunds can concern shipped units (goodwill on
goods the customer keeps). So, per line:

    refunded_unshipped = min(refunded - returned_refunded, quantity - shipped)
    left_to_ship       = quantity - shipped - refunded_unshipped

and an order is fulfilled when nothing is left to ship on any line and something shipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from shopkeeper.errors import Conflict, InvalidInput
from shopkeeper.fulfilment.states import FulfillmentStatus
from shopkeeper.orders.states import OrderStatus
from shopkeeper.payments.states import PaymentStatus

# A shipment may leave once the money is certain: captured, or authorised (captured on
# fulfilment, SHOPKEEPER_CAPTURE=on_fulfillment). A fully refunded order has nothing to send.
SHIPPABLE_PAYMENT_STATUSES = frozenset(
    {PaymentStatus.AUTHORIZED, PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED}
)
MAX_CARRIER_LENGTH = 100
MAX_TRACKING_LENGTH = 100


CANCEL_BLOCKED_SHIPPED = "it has shipped: its goods come back through a return"


class OrderHasShipments(Conflict):
    code = "order_has_shipments"
    title = "An order with a shipment cannot be cancelled: its goods come back through a return"


class OrderNotPaid(Conflict):
    code = "order_not_paid"
    title = "Only a paid or authorised order can be shipped"


class OrderCancelled(Conflict):
    code = "order_cancelled"
    title = "A cancelled order cannot be shipped"


class QuantityExceedsUnshipped(InvalidInput):
    code = "quantity_exceeds_unshipped"
    title = "More is asked to ship than is left to ship"


class InvalidShipmentLines(InvalidInput):
    code = "invalid_shipment_lines"
    title = "The shipment names lines that are not valid for this order"


class LineLike(Protocol):
    """What `line_facts` reads of an order line."""

    @property
    def pk(self) -> int: ...

    @property
    def sku(self) -> str: ...

    @property
    def quantity(self) -> int: ...


@dataclass(frozen=True, slots=True)
class LineFulfilment:
    """One order line: bought, shipped, refunded (any refund naming it), returned-and-refunded."""

    sku: str
    quantity: int
    shipped: int = 0
    refunded: int = 0
    returned_refunded: int = 0

    @property
    def refunded_unshipped(self) -> int:
        without_return = max(self.refunded - self.returned_refunded, 0)
        return min(without_return, max(self.quantity - self.shipped, 0))

    @property
    def left_to_ship(self) -> int:
        return max(self.quantity - self.shipped - self.refunded_unshipped, 0)


def line_facts(
    line: LineLike,
    *,
    shipped: Mapping[int, int],
    refunded: Mapping[int, int],
    refunded_through_returns: Mapping[int, int],
) -> LineFulfilment:
    """One order line's facts from its units per line id: shipped, refunded, and refunded
    through a return (the readers, order detail and use cases, count them their own way)."""
    return LineFulfilment(
        sku=line.sku,
        quantity=line.quantity,
        shipped=shipped.get(line.pk, 0),
        refunded=refunded.get(line.pk, 0),
        returned_refunded=refunded_through_returns.get(line.pk, 0),
    )


def fulfillment_status(lines: Sequence[LineFulfilment]) -> FulfillmentStatus:
    if not any(line.shipped for line in lines):
        return FulfillmentStatus.UNFULFILLED
    if any(line.left_to_ship for line in lines):
        return FulfillmentStatus.PARTIALLY_FULFILLED
    return FulfillmentStatus.FULFILLED


def ensure_shippable(order_status: OrderStatus | str, payment_status: PaymentStatus | str) -> None:
    if OrderStatus(order_status) == OrderStatus.CANCELLED:
        raise OrderCancelled()
    if PaymentStatus(payment_status) not in SHIPPABLE_PAYMENT_STATUSES:
        raise OrderNotPaid(
            f"The payment is {payment_status}: ship once it is paid or authorised",
            payment_status=str(payment_status),
        )


def can_ship(
    order_status: OrderStatus | str,
    payment_status: PaymentStatus | str,
    lines: Sequence[LineFulfilment],
) -> bool:
    """Would a shipment of what is left be accepted now."""
    try:
        ensure_shippable(order_status, payment_status)
    except (OrderCancelled, OrderNotPaid):
        return False
    return any(line.left_to_ship for line in lines)


def plan_shipment(
    lines: Sequence[LineFulfilment], requested: Mapping[str, int] | None
) -> dict[str, int]:
    """The units of each SKU this shipment takes: as asked, or (None) all that is left.

    Refuses a SKU the order does not have, a quantity below 1, more than is left to ship, and a
    shipment of nothing.
    """
    by_sku = {line.sku: line for line in lines}
    if requested is None:
        planned = {line.sku: line.left_to_ship for line in lines if line.left_to_ship}
        if not planned:
            raise QuantityExceedsUnshipped("Everything on this order has shipped already")
        return planned
    if not requested:
        raise InvalidShipmentLines("Name at least one line, or none to ship everything left")
    for sku, quantity in requested.items():
        line = by_sku.get(sku)
        if line is None:
            raise InvalidShipmentLines(f"This order has no line {sku!r}", sku=sku)
        if quantity < 1:
            raise InvalidShipmentLines(f"Ship at least 1 of {sku}", sku=sku)
        if quantity > line.left_to_ship:
            raise QuantityExceedsUnshipped(
                f"{quantity} of {sku} asked, {line.left_to_ship} left to ship",
                sku=sku,
                left_to_ship=line.left_to_ship,
            )
    return dict(requested)


def ensure_tracking(carrier: str, tracking_number: str) -> tuple[str, str]:
    carrier, tracking_number = carrier.strip(), tracking_number.strip()
    if len(carrier) > MAX_CARRIER_LENGTH:
        raise InvalidInput(f"The carrier is longer than {MAX_CARRIER_LENGTH} characters")
    if len(tracking_number) > MAX_TRACKING_LENGTH:
        raise InvalidInput(f"The tracking number is longer than {MAX_TRACKING_LENGTH} characters")
    return carrier, tracking_number


# Money settled: captured (and perhaps refunded), not merely authorised.
SETTLED_PAYMENT_STATUSES = frozenset(
    {PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)


def is_done(
    order_status: OrderStatus | str,
    payment_status: PaymentStatus | str,
    lines: Sequence[LineFulfilment],
    *,
    open_refunds: bool,
    open_returns: bool,
    open_disputes: bool = False,
) -> bool:
    """Should the order move to `closed`: something shipped and every unit shipped or refunded
    (returned units were shipped), the money settled, and nothing open (a refund on its way or
    awaiting approval, a return not finished, a dispute). An order refunded in full before
    anything shipped is not closed: it is cancelled, as the cancellation rule says."""
    return (
        may_close(order_status, payment_status)
        and not (open_refunds or open_returns or open_disputes)
        and any(line.shipped for line in lines)
        and all(line.left_to_ship == 0 for line in lines)
    )


def may_close(order_status: OrderStatus | str, payment_status: PaymentStatus | str) -> bool:
    """The part of `is_done` the order row alone answers (so the rest need not be read)."""
    return (
        OrderStatus(order_status) == OrderStatus.PROCESSING
        and PaymentStatus(payment_status) in SETTLED_PAYMENT_STATUSES
    )
