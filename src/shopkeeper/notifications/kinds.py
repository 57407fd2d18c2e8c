"""The customer e-mails there are: one per kind of event, each with its subject and templates
(`notifications/email/<kind>.txt` and `.html`)."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    ORDER_PLACED = "order_placed"
    PAYMENT_RECEIVED = "payment_received"
    SHIPPED = "shipped"
    REFUND_MADE = "refund_made"
    ORDER_CANCELLED = "order_cancelled"
    RETURN_RECEIVED = "return_received"
    RETURN_REFUNDED = "return_refunded"


SUBJECTS: dict[Kind, str] = {
    Kind.ORDER_PLACED: "Your order {number}",
    Kind.PAYMENT_RECEIVED: "Payment received for order {number}",
    Kind.SHIPPED: "Order {number} has shipped",
    Kind.REFUND_MADE: "A refund for order {number}",
    Kind.ORDER_CANCELLED: "Order {number} is cancelled",
    Kind.RETURN_RECEIVED: "We received your return for order {number}",
    Kind.RETURN_REFUNDED: "Your return for order {number} is refunded",
}
