"""Demo data for `shopkeeper seed`: a catalog, one account per role, and orders in several states.

Idempotent: what already exists (a SKU, an e-mail address, a demo customer's open order) is left
as it is. Demo orders go through the real use cases: `place_order` creates the order and its
PaymentIntent at whatever Stripe the settings name (localstripe in the offline demo), the card is
confirmed at that Stripe, and `apply_intent` records what Stripe reports, ledger rows included.
Some paid orders then live on (demo/stories.py): shipped, delivered, returned, noted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shopkeeper.accounts.models import User
from shopkeeper.accounts.permissions import Role
from shopkeeper.accounts.provisioning import create_user
from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import create_product
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.demo.stories import NO_STORY, Story, tell
from shopkeeper.errors import PaymentDeclined
from shopkeeper.money import Money
from shopkeeper.orders.models import Order
from shopkeeper.orders.states import OrderStatus
from shopkeeper.payments.gateway import IntentSnapshot, PaymentGateway
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.services import apply_intent

DEMO_PASSWORD = "shopkeeper-demo"
OWNER_EMAIL = "owner@example.com"
DEMO_USERS = {
    Role.OWNER: OWNER_EMAIL,
    Role.MANAGER: "manager@example.com",
    Role.SUPPORT: "support@example.com",
    Role.VIEWER: "viewer@example.com",
}

# (sku, name, price, currency, stock): USD, plus a zero-decimal and a three-decimal currency.
DEMO_PRODUCTS = (
    ("MUG-ENAMEL", "Enamel camp mug", "14.00", "USD", 60),
    ("TEE-ORGANIC", "Organic cotton tee", "24.00", "USD", 40),
    ("CAP-CANVAS", "Canvas cap", "18.50", "USD", 30),
    ("NOTEBOOK-DOT", "Dot-grid notebook", "9.75", "USD", 100),
    ("TEA-SENCHA", "Sencha green tea, 100 g", "1800", "JPY", 25),
    ("DATES-MEDJOOL", "Medjool dates, 1 kg", "4.250", "KWD", 20),
)

# Stripe's test payment methods: one that pays, one that is declined.
CARD_PAYS = "pm_card_visa"
CARD_DECLINED = "pm_card_chargeCustomerFail"


@dataclass(frozen=True, slots=True)
class DemoOrder:
    email: str
    items: tuple[tuple[str, int], ...]
    # "pay", "authorize" (manual capture), "decline", or "none" (left awaiting payment).
    outcome: str
    # What happens to the paid order next (demo/stories.py); each step is done once.
    story: Story = NO_STORY


DEMO_ORDERS = (
    DemoOrder("ada@example.com", (("MUG-ENAMEL", 2), ("NOTEBOOK-DOT", 1)), "pay"),
    DemoOrder("grace@example.com", (("TEE-ORGANIC", 1),), "authorize"),
    DemoOrder("linus@example.com", (("CAP-CANVAS", 1),), "none"),
    DemoOrder("margaret@example.com", (("TEE-ORGANIC", 2),), "decline"),
    DemoOrder("yukihiro@example.com", (("TEA-SENCHA", 2),), "pay"),
    DemoOrder("fatima@example.com", (("DATES-MEDJOOL", 1),), "pay"),
    DemoOrder(
        "alan@example.com",
        (("MUG-ENAMEL", 1), ("CAP-CANVAS", 1)),
        "pay",
        Story(
            ship=(("MUG-ENAMEL", 1),),
            note="The cap follows in a second parcel; the customer agreed on the phone.",
        ),
    ),
    DemoOrder(
        "barbara@example.com", (("NOTEBOOK-DOT", 3),), "pay", Story(ship_all=True, deliver=True)
    ),
    DemoOrder(
        "edsger@example.com",
        (("TEE-ORGANIC", 1), ("NOTEBOOK-DOT", 1)),
        "pay",
        Story(ship_all=True, deliver=True, customer_return=("TEE-ORGANIC", 1, "wrong_item")),
    ),
    DemoOrder(
        "katherine@example.com",
        (("CAP-CANVAS", 2),),
        "pay",
        Story(
            ship_all=True,
            deliver=True,
            customer_return=("CAP-CANVAS", 1, "damaged"),
            refund_return=True,
        ),
    ),
)

DEMO_ADDRESS = {
    "name": "Demo Customer",
    "line1": "1 Example Street",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}

Report = Callable[[str], None]


def seed_catalog(report: Report) -> None:
    for sku, name, price, currency, stock in DEMO_PRODUCTS:
        if Product.objects.filter(sku=sku).exists():
            report(f"  product {sku}: exists")
            continue
        create_product(sku=sku, name=name, price=price, currency=currency, stock=stock)
        report(f"  product {sku}: created ({Money.parse(price, currency)}, {stock} in stock)")


def seed_users(report: Report, password: str) -> None:
    for role, email in DEMO_USERS.items():
        if User.objects.filter(email__iexact=email).exists():
            report(f"  {role.value} {email}: exists (password unchanged)")
            continue
        create_user(email=email, password=password, role=role.value, full_name=f"Demo {role}")
        report(f"  {role.value} {email}: created")


def seed_orders(report: Report, gateway: PaymentGateway | None = None) -> None:
    """Place the demo orders that are not there yet, and take the paid ones through what is
    left of their story (by `OWNER_EMAIL`). A Stripe error stops the seeding."""
    gateway = gateway or get_gateway()
    staff = User.objects.get(email__iexact=OWNER_EMAIL)
    for demo in DEMO_ORDERS:
        order = Order.objects.filter(email=demo.email).exclude(status=OrderStatus.CANCELLED).first()
        if order is not None:
            report(f"  order {order.number} for {demo.email}: exists ({_state(order)})")
        else:
            order = _place(demo, gateway)
            report(f"  order {order.number} for {demo.email}: {_state(order)}, {order.grand_total}")
        steps = tell(order, demo.story, staff=staff)
        for step in steps:
            report(f"    {step}")
        if steps:
            order.refresh_from_db()
            report(f"    now {_state(order)}")


def _place(demo: DemoOrder, gateway: PaymentGateway) -> Order:
    capture = "manual" if demo.outcome == "authorize" else "automatic"
    placed = place_order(
        email=demo.email,
        items=[BasketItem(sku=sku, quantity=quantity) for sku, quantity in demo.items],
        shipping_address=dict(DEMO_ADDRESS),
        gateway=_CaptureMethod(gateway, capture),
    )
    intent_id = placed.payment.intent_id
    if demo.outcome == "none":
        return placed.order
    key = f"seed-{placed.order.number}-confirm"
    try:
        method = CARD_DECLINED if demo.outcome == "decline" else CARD_PAYS
        intent = gateway.confirm_payment_intent(
            intent_id, payment_method=method, idempotency_key=key
        )
    except PaymentDeclined:
        # Stripe keeps the decline on the PaymentIntent (last_payment_error): record that.
        intent = gateway.retrieve_payment_intent(intent_id)
    order = apply_intent(intent, source="seed")
    return order if order is not None else placed.order


def _state(order: Order) -> str:
    return f"{order.status}/{order.payment_status}"


class _CaptureMethod:
    """The gateway, creating PaymentIntents with a chosen capture method whatever the setting.

    The demo shows an authorised order next to paid ones, so that order asks for manual capture.
    """

    def __init__(self, inner: PaymentGateway, capture_method: str) -> None:
        self._inner = inner
        self._capture_method = capture_method

    def create_payment_intent(
        self, *, amount: Money, order_number: str, capture_method: str, idempotency_key: str
    ) -> IntentSnapshot:
        return self._inner.create_payment_intent(
            amount=amount,
            order_number=order_number,
            capture_method=self._capture_method,
            idempotency_key=idempotency_key,
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
