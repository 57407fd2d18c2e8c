"""Building blocks for back-office tests: staff users and orders in a known money state.

Orders are made the way customers make them (`place_order`, then the fake gateway's payment
applied through `apply_intent`), so the back office sees the same rows production would.
"""

from __future__ import annotations

from typing import Any

from django.test import override_settings

from shopkeeper.accounts.models import User
from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import create_product
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.orders.models import Order
from shopkeeper.payments.services import apply_intent
from tests.factories import address
from tests.fakes import FakeGateway

PASSWORD = "correct horse battery staple"
ADDRESS = address(name="Ada Lovelace")


def make_staff(role: str, email: str | None = None) -> User:
    return User.objects.create_user(email or f"{role}@shop.example", PASSWORD, role=role)


def ensure_product(sku: str = "MUG", *, price: str = "10.50", currency: str = "USD") -> Product:
    product = Product.objects.filter(sku=sku).first()
    return product or create_product(
        sku=sku, name=f"{sku.title()} product", price=price, currency=currency, stock=1000
    )


def placed_order(
    gateway: FakeGateway,
    *,
    items: dict[str, int] | None = None,
    pay: bool = True,
    capture: str = "automatic",
    email: str = "ada@example.com",
) -> Order:
    """An order for `items` (sku → quantity, 2 mugs at 10.50 + 5.00 shipping by default)."""
    items = items or {"MUG": 2}
    for sku in items:
        ensure_product(sku)
    with override_settings(SHOPKEEPER_CAPTURE=capture):
        placed = place_order(
            email=email,
            items=[BasketItem(sku, qty) for sku, qty in items.items()],
            shipping_address=ADDRESS,
            gateway=gateway,
        )
    if pay:
        apply_intent(gateway.pay(placed.payment.intent_id), source="test")
    return Order.objects.get(pk=placed.order.pk)


def order_state(number: str) -> dict[str, Any]:
    order = Order.objects.get(number=number)
    return {"status": order.status, "payment_status": order.payment_status}
