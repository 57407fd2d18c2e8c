from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema


class OrderLineOut(Schema):
    id: int
    sku: str
    name: str
    quantity: int
    restocked_quantity: int
    unit_price: str
    unit_price_minor: int
    line_total: str
    line_total_minor: int


class PaymentOut(Schema):
    payment_intent_id: str
    capture_method: str
    intent_status: str
    card_brand: str
    card_last4: str
    flagged: bool
    flag_reason: str
    last_error: str


class OrderOut(Schema):
    number: str
    email: str
    status: str
    payment_status: str
    currency: str
    created_at: datetime
    shipping_address: dict[str, Any]
    lines: list[OrderLineOut]
    payment: PaymentOut | None
    subtotal: str
    subtotal_minor: int
    shipping: str
    shipping_minor: int
    grand_total: str
    grand_total_minor: int
    authorized: str
    authorized_minor: int
    captured: str
    captured_minor: int
    refunded: str
    refunded_minor: int
    refundable: str
    refundable_minor: int
