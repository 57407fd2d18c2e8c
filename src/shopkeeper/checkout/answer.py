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
from shopkeeper.orders.models import OrderLine
from shopkeeper.payments.models import Payment


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
        "lines": [_line(line, currency) for line in placed.lines],
        "payment": _payment(placed.payment),
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
    )
    return detail


def _line(line: OrderLine, currency: str) -> dict[str, Any]:
    return {
        "id": line.pk,
        "sku": line.sku,
        "name": line.name,
        "quantity": line.quantity,
        "restocked_quantity": line.restocked_quantity,
        **amount_fields("unit_price", line.unit_price_minor, currency),
        **amount_fields("line_total", line.line_total_minor, currency),
    }


def _payment(payment: Payment) -> dict[str, Any]:
    return {
        "payment_intent_id": payment.intent_id,
        "capture_method": payment.capture_method,
        "intent_status": payment.intent_status,
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
        "flagged": payment.flagged,
        "flag_reason": payment.flag_reason,
        "last_error": payment.last_error,
    }
