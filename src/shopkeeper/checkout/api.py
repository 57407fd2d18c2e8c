from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import StrictInt

from shopkeeper.checkout.answer import placed_order_detail
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.orders.schemas import OrderOut

router = Router(tags=["checkout"])


class ItemIn(Schema):
    sku: str
    # A JSON integer: "2", 2.0 and true are refused rather than coerced.
    quantity: StrictInt


class AddressIn(Schema):
    name: str
    line1: str
    city: str
    postal_code: str
    country: str


class CheckoutIn(Schema):
    email: str
    items: list[ItemIn]
    shipping_address: AddressIn


class PaymentStartOut(Schema):
    payment_intent_id: str
    client_secret: str
    publishable_key: str


class CheckoutOut(Schema):
    order: OrderOut
    payment: PaymentStartOut


@router.post("", response={201: CheckoutOut})
def checkout(request: HttpRequest, payload: CheckoutIn) -> Status[dict[str, Any]]:
    placed = place_order(
        email=payload.email,
        items=[BasketItem(sku=item.sku, quantity=item.quantity) for item in payload.items],
        shipping_address=payload.shipping_address.dict(),
    )
    return Status(
        201,
        {
            "order": placed_order_detail(placed),
            "payment": {
                "payment_intent_id": placed.payment.intent_id,
                "client_secret": placed.payment.client_secret,
                "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            },
        },
    )
