"""Reads of orders, shaped for the API and the back office."""

from __future__ import annotations

from typing import Any

from shopkeeper.errors import NotFound
from shopkeeper.money import Money
from shopkeeper.orders.models import Order
from shopkeeper.payments.selectors import current_payment, order_balance


class OrderNotFound(NotFound):
    code = "order_not_found"
    title = "No order with this number"


def get_order(number: str) -> Order:
    order = Order.objects.filter(number=number).first()
    if order is None:
        raise OrderNotFound(f"No order {number!r}", number=number)
    return order


def amount_fields(name: str, minor: int, currency: str) -> dict[str, Any]:
    """`grand_total: "26.00"` and `grand_total_minor: 2600`, side by side."""
    return {name: Money(minor, currency).to_decimal_string(), f"{name}_minor": minor}


def order_detail(order: Order) -> dict[str, Any]:
    balance = order_balance(order)
    currency = order.currency
    payment = current_payment(order)
    detail: dict[str, Any] = {
        "number": order.number,
        "email": order.email,
        "status": order.status,
        "payment_status": order.payment_status,
        "currency": currency,
        "created_at": order.created_at,
        "shipping_address": order.shipping_address,
        "lines": [
            {
                "id": line.pk,
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "restocked_quantity": line.restocked_quantity,
                **amount_fields("unit_price", line.unit_price_minor, currency),
                **amount_fields("line_total", line.line_total_minor, currency),
            }
            for line in order.lines.all()
        ],
        "payment": None
        if payment is None
        else {
            "payment_intent_id": payment.intent_id,
            "capture_method": payment.capture_method,
            "intent_status": payment.intent_status,
            "card_brand": payment.card_brand,
            "card_last4": payment.card_last4,
            "flagged": payment.flagged,
            "flag_reason": payment.flag_reason,
            "last_error": payment.last_error,
        },
    }
    for name, minor in (
        ("subtotal", order.subtotal_minor),
        ("shipping", order.shipping_minor),
        ("grand_total", order.grand_total_minor),
        ("authorized", balance.authorized),
        ("captured", balance.captured),
        ("refunded", balance.refunded),
        ("refundable", balance.refundable()),
    ):
        detail.update(amount_fields(name, minor, currency))
    return detail
