"""Factories shared by every test tier (a non-test module: any test may import from it).

Rows are made the way production makes them: products through the catalog service, orders
through checkout (`place_order`), payments by the customer paying at the gateway (the fake's
`pay`, or a card confirmation at localstripe) applied with `apply_intent`, refunds through
`request_refund`. Each factory takes keyword arguments for what a test cares about; the defaults
make the house order: 2 x MUG at 10.00 USD + 5.00 shipping = 25.00 USD, to ada@example.com.
"""

from __future__ import annotations

from typing import Any

from django.test import override_settings

from shopkeeper.accounts.models import ApiToken, User, hash_token
from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import create_product
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.orders.models import Order
from shopkeeper.payments.gateway import PaymentGateway
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.services import apply_intent
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.services import request_refund

ADDRESS = {
    "name": "Ada",
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}
# The password of staff made with `staff(..., password=PASSWORD)`, for tests that sign in.
PASSWORD = "correct horse battery staple"


def address(**changes: str) -> dict[str, str]:
    """ADDRESS with some fields changed (or added, as a form's `email`)."""
    return {**ADDRESS, **changes}


def staff(role: str = "manager", email: str | None = None, *, password: str | None = None) -> User:
    """A member of staff, `<role>@shop.example` unless named; no usable password unless given."""
    return User.objects.create_user(email or f"{role}@shop.example", password, role=role)


def token_for(user: User, *, name: str = "tests") -> str:
    """A new API token of `user`; the raw value, as a program would send it."""
    raw = ApiToken.new_raw_token()
    ApiToken.objects.create(user=user, key_hash=hash_token(raw), name=name)
    return raw


def product(
    sku: str = "MUG", *, price: str = "10.00", currency: str = "USD", stock: int = 100
) -> Product:
    """The catalog's product `sku`, made (named after it) if it is not there yet."""
    existing = Product.objects.filter(sku=sku).first()
    return existing or create_product(
        sku=sku, name=sku.title(), price=price, currency=currency, stock=stock
    )


def customer_pays(gateway: PaymentGateway | Any, intent_id: str, *, decline: bool = False) -> Any:
    """The customer's card payment: the fake's `pay`, or a confirmation at localstripe."""
    if hasattr(gateway, "pay"):
        return gateway.pay(intent_id, decline=decline)
    card = "pm_card_chargeDeclined" if decline else "pm_card_visa"
    return gateway.confirm_payment_intent(
        intent_id, payment_method=card, idempotency_key=f"confirm-{intent_id}"
    )


def new_order(
    gateway: PaymentGateway | Any = None,
    *,
    items: dict[str, int] | None = None,
    price: str = "10.00",
    currency: str = "USD",
    stock: int = 100,
    capture: str | None = None,
    pay: bool = False,
    decline: bool = False,
    email: str = "ada@example.com",
    shipping_address: dict[str, str] | None = None,
) -> Order:
    """An order for `items` (sku -> quantity; default 2 x MUG) placed through checkout.

    Products not yet in the catalog are made at `price`, `currency` and `stock`. `capture`
    ("automatic" or "manual") overrides SHOPKEEPER_CAPTURE while the order is placed. With `pay`
    the customer pays (with `decline` the card is refused) and the gateway's answer is applied.
    """
    gateway = gateway or get_gateway()
    items = items or {"MUG": 2}
    for sku in items:
        product(sku, price=price, currency=currency, stock=stock)
    capture_setting = {} if capture is None else {"SHOPKEEPER_CAPTURE": capture}
    with override_settings(**capture_setting):
        placed = place_order(
            email=email,
            items=[BasketItem(sku, quantity) for sku, quantity in items.items()],
            shipping_address=shipping_address or ADDRESS,
            gateway=gateway,
        )
    if pay or decline:
        apply_intent(
            customer_pays(gateway, placed.payment.intent_id, decline=decline), source="test"
        )
    return Order.objects.get(pk=placed.order.pk)


def paid_order(gateway: PaymentGateway | Any = None, **changes: Any) -> Order:
    """An order paid in full (captured unless `capture="manual"`); see `new_order` for the rest."""
    return new_order(gateway, pay=True, **changes)


def authorised_order(gateway: PaymentGateway | Any = None, **changes: Any) -> Order:
    """An order whose payment is authorised for manual capture, not captured yet."""
    authorised = new_order(gateway, capture="manual", pay=True, **changes)
    assert authorised.payment_status == "authorized", authorised.payment_status
    return authorised


def requested_refund(
    paid: Order,
    *,
    actor: User,
    amount: str | None = None,
    reason: str = "requested_by_customer",
    **details: Any,
) -> Refund:
    """A refund of `paid` requested by `actor` through the refund service, as staff would ask
    for it (`amount` None: all that is refundable; `details`: lines, note, gateway...)."""
    return request_refund(
        order_number=paid.number, actor=actor, amount=amount, reason=reason, **details
    )
