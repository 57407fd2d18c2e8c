"""Set-up for the refund tests: staff with tokens, and orders paid the real way.

An order is placed through checkout, paid at the gateway (fake or localstripe) and applied with
`apply_intent`, so every refund test starts from a state the product itself reaches.
"""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from shopkeeper.accounts.models import ApiToken, User, hash_token
from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import create_product
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.orders.models import Order
from shopkeeper.payments.gateway import PaymentGateway
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.services import apply_intent
from shopkeeper.refunds.models import Refund
from tests.factories import ADDRESS


def staff(role: str, email: str | None = None) -> User:
    """A member of staff without a usable password (no Argon2 hashing: fast)."""
    return User.objects.create_user(email or f"{role}@shop.example", None, role=role)


def token_for(user: User) -> str:
    raw = ApiToken.new_raw_token()
    ApiToken.objects.create(user=user, key_hash=hash_token(raw), name="refund tests")
    return raw


def stocked(sku: str, *, price: str, currency: str = "USD", stock: int = 100) -> Product:
    existing = Product.objects.filter(sku=sku).first()
    return existing or create_product(
        sku=sku, name=sku.title(), price=price, currency=currency, stock=stock
    )


def paid_order(
    gateway: Any,
    *,
    items: dict[str, int] | None = None,
    price: str = "10.00",
    currency: str = "USD",
) -> Order:
    """Paid in full. Default: 2 x MUG at 10.00 USD + 5.00 shipping = 25.00 USD."""
    items = items or {"MUG": 2}
    for sku in items:
        stocked(sku, price=price, currency=currency)
    placed = place_order(
        email="ada@example.com",
        items=[BasketItem(sku, qty) for sku, qty in items.items()],
        shipping_address=ADDRESS,
        gateway=gateway,
    )
    apply_intent(pay(gateway, placed.payment.intent_id), source="test")
    return Order.objects.get(pk=placed.order.pk)


def pay(gateway: PaymentGateway | Any, intent_id: str) -> Any:
    """The customer's card payment: the fake's `pay`, or a confirmation at localstripe."""
    if hasattr(gateway, "pay"):
        return gateway.pay(intent_id)
    return gateway.confirm_payment_intent(
        intent_id, payment_method="pm_card_visa", idempotency_key=f"confirm-{intent_id}"
    )


def refunded_minor(order: Order) -> int:
    kinds = LedgerEntry.objects.filter(order=order)
    refunds = sum(e.amount_minor for e in kinds if e.kind == "refund")
    return refunds - sum(e.amount_minor for e in kinds if e.kind == "refund_reversal")


def refund_count(order: Order, status: str | None = None) -> int:
    refunds = Refund.objects.filter(order=order)
    return (refunds.filter(status=status) if status else refunds).count()


class Api:
    """JSON calls to the admin API with a bearer token, as programs make them."""

    def __init__(self, raw_token: str) -> None:
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {raw_token}"}

    def post(self, path: str, body: Any = None, *, key: str | None = None) -> Any:
        headers = dict(self.headers)
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        return self.client.post(
            path, json.dumps(body or {}), content_type="application/json", **headers
        )

    def get(self, path: str) -> Any:
        return self.client.get(path, **self.headers)

    def refund(self, number: str, body: dict[str, Any], *, key: str | None = None) -> Any:
        return self.post(f"/api/admin/orders/{number}/refunds", body, key=key)
