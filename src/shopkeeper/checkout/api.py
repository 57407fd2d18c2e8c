from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from pydantic import StrictInt

from shopkeeper.answers import json_answer
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
def checkout(request: HttpRequest, payload: CheckoutIn) -> HttpResponse:
    """Place the order and start its payment; the 201 is CheckoutOut (shaped by
    `answers.json_answer`: ninja's own check of the answer cost more CPU than the rest of it)."""
    placed = place_order(
        email=payload.email,
        items=[BasketItem(sku=item.sku, quantity=item.quantity) for item in payload.items],
        shipping_address=payload.shipping_address.dict(),
    )
    return json_answer(
        CheckoutOut,
        {
            "order": placed_order_detail(placed),
            "payment": {
                "payment_intent_id": placed.payment.intent_id,
                "client_secret": placed.payment.client_secret,
                "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            },
        },
        status=201,
    )
