"""Shared set-up for the order administration tests: staff, tokens, and orders in every state.

Orders are made the real way (catalog → checkout → the fake gateway's PaymentIntent → the
customer paying → `apply_intent`), so each test starts from a state the product can reach.
"""

from __future__ import annotations

from typing import Any

from django.test import Client

from shopkeeper.accounts.models import ApiToken, User, hash_token
from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import create_product
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.orders.models import Order
from shopkeeper.payments.services import apply_intent
from tests.factories import ADDRESS
from tests.fakes import FakeGateway

ROLES = ("owner", "manager", "support", "viewer")


def make_staff(role: str, email: str | None = None) -> User:
    """A member of staff with no usable password (fast: no Argon2 hashing)."""
    return User.objects.create_user(email or f"{role}@shop.example", None, role=role)


def token_for(user: User) -> str:
    raw = ApiToken.new_raw_token()
    ApiToken.objects.create(user=user, key_hash=hash_token(raw), name="tests")
    return raw


def product(sku: str = "MUG", *, price: str = "10.50", currency: str = "USD", stock: int = 10):
    existing = Product.objects.filter(sku=sku).first()
    return existing or create_product(
        sku=sku, name=sku.title(), price=price, currency=currency, stock=stock
    )


def place(
    gateway: FakeGateway,
    settings: Any,
    *,
    capture: str = "automatic",
    pay: bool = False,
    decline: bool = False,
    quantity: int = 2,
    sku: str = "MUG",
    email: str = "ada@example.com",
) -> Order:
    """An order for `quantity` x 10.50 USD + 5.00 shipping (26.00 for two), optionally paid."""
    settings.SHOPKEEPER_CAPTURE = capture
    product(sku)
    placed = place_order(
        email=email, items=[BasketItem(sku, quantity)], shipping_address=ADDRESS, gateway=gateway
    )
    if pay or decline:
        apply_intent(gateway.pay(placed.payment.intent_id, decline=decline), source="test")
    return Order.objects.get(pk=placed.order.pk)


def intent_id(order: Order) -> str:
    return order.payments.get().intent_id


class Api:
    """JSON calls to the admin API with a bearer token, as programs make them."""

    def __init__(self, raw_token: str) -> None:
        self.client = Client()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {raw_token}"}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/admin{path}", params, **self.auth)

    def post(self, path: str, body: Any = None, **headers: Any) -> Any:
        return self.client.post(
            f"/api/admin{path}",
            body if body is not None else {},
            content_type="application/json",
            **self.auth,
            **headers,
        )


def api_as(role: str) -> Api:
    return Api(token_for(make_staff(role)))
