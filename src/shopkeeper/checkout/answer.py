"""The checkout's answer, built from what the request wrote: no query after the money moved.

A new order has no ledger row, refund, dispute or flag yet, so its detail is what
`orders_view.selectors.order_detail` would read back, with those empty; the actions come from
the same pure rules, for a customer (no staff permissions). A test keeps the two identical.
"""

from __future__ import annotations

from typing import Any

from shopkeeper.accounts.permissions import permissions_of
from shopkeeper.checkout.services import PlacedOrder
from shopkeeper.money import amount_fields
from shopkeeper.orders.actions import available_actions
from shopkeeper.orders_view.authorisations import authorisation_fields
from shopkeeper.orders_view.selectors import line_data, payment_data


def placed_order_detail(placed: PlacedOrder) -> dict[str, Any]:
    """The new order as the API shows an order (`OrderOut`), to the customer who placed it."""
    order, currency = placed.order, placed.order.currency
    detail: dict[str, Any] = {
        "number": order.number,
        "email": order.email,
        "status": order.status,
        "payment_status": order.payment_status,
        "currency": currency,
        "created_at": order.created_at,
        "shipping_address": order.shipping_address,
        "lines": [line_data(line, currency) for line in placed.lines],
        "payment": payment_data(placed.payment),
    }
    for name, minor in (
        ("subtotal", order.subtotal_minor),
        ("shipping", order.shipping_minor),
        ("grand_total", order.grand_total_minor),
        ("authorized", 0),
        ("captured", 0),
        ("refunded", 0),
        ("refundable", 0),
        ("disputed_amount", 0),
    ):
        detail.update(amount_fields(name, minor, currency))
    customer = permissions_of(None)
    detail.update(
        available_actions=available_actions(
            order.status, order.payment_status, customer, False, refundable_minor=0
        ),
        cancel_blocked_reason=None,  # only shown to staff allowed to cancel
        cancel_reason=order.cancel_reason,
        cancelled_at=order.cancelled_at,
        needs_attention=False,
        attention=[],
        refunds=[],
        disputed=False,
        disputes=[],
        **authorisation_fields(None),  # nothing authorised yet
        fulfillment_status="unfulfilled",
        shipments=[],
        returns=[],
    )
    return detail
