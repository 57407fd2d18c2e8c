"""Checkout: turn a basket into an order with reserved stock and a Stripe PaymentIntent."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from shopkeeper.audit.services import record_for_order
from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import (
    UnknownSku,
    ensure_stock_seen,
    reserve_stock,
    sellable_products,
)
from shopkeeper.errors import DomainError, InvalidInput
from shopkeeper.money import Money
from shopkeeper.notifications.kinds import Kind
from shopkeeper.notifications.services import notify
from shopkeeper.orders.locks import lock_order
from shopkeeper.orders.models import Order, OrderLine
from shopkeeper.orders.states import OrderStatus, move_order
from shopkeeper.orders.stock import restock_order
from shopkeeper.payments.capture_modes import CaptureMode, stripe_capture_method
from shopkeeper.payments.gateway import IntentSnapshot, PaymentGateway
from shopkeeper.payments.models import Payment
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.states import PaymentStatus, move_payment
from shopkeeper.shipping import shipping_fee

logger = logging.getLogger(__name__)

MAX_QUANTITY = 1000
MAX_LINES = 100
# Shipping address fields and their maximum lengths.
ADDRESS_FIELDS = {"name": 200, "line1": 200, "city": 100, "postal_code": 20, "country": 20}
COUNTRY_CODE = re.compile(r"[A-Za-z]{2}")
MAX_EMAIL_LENGTH = 254  # the column's length (RFC 5321 path limit)
MAX_SKU_LENGTH = 64
# Far above any amount Stripe charges, far below what the amount columns (64-bit) hold.
MAX_ORDER_MINOR = 10**15
NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


class MixedCurrencies(InvalidInput):
    code = "mixed_currencies"
    title = "All items of one order must share one currency"


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"
    title = "Quantities must be whole numbers from 1 to 1000"


class OrderTooLarge(InvalidInput):
    code = "order_too_large"
    title = "The order total is too large to be charged"


@dataclass(frozen=True, slots=True)
class BasketItem:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order: Order
    lines: list[OrderLine]
    payment: Payment


def new_order_number() -> str:
    return "SK-" + "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(8))


def _validated_basket(items: list[BasketItem]) -> dict[str, int]:
    if not items:
        raise InvalidInput("The basket is empty")
    if len(items) > MAX_LINES:
        raise InvalidInput(f"At most {MAX_LINES} different items per order")
    quantities: dict[str, int] = {}
    for item in items:
        if not isinstance(item.sku, str) or not 0 < len(item.sku) <= MAX_SKU_LENGTH:
            raise UnknownSku(f"Unknown SKU: {str(item.sku)[:MAX_SKU_LENGTH]!r}")
        if "\x00" in item.sku:  # PostgreSQL cannot even compare it; no SKU holds one
            raise UnknownSku("Unknown SKU")
        if isinstance(item.quantity, bool) or not isinstance(item.quantity, int):
            raise InvalidQuantity(sku=item.sku)
        total = quantities.get(item.sku, 0) + item.quantity
        if item.quantity < 1 or total > MAX_QUANTITY:
            raise InvalidQuantity(sku=item.sku)
        quantities[item.sku] = total
    return quantities


def _clean_text(value: object, *, field: str, max_length: int) -> str:
    """Trimmed single-line text; control characters (NUL breaks PostgreSQL) are refused."""
    text = str(value or "").strip()
    if len(text) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters", field=field)
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise InvalidInput(f"{field} contains control characters", field=field)
    return text


def _validated_address(address: dict[str, Any]) -> dict[str, str]:
    cleaned = {
        key: _clean_text(address.get(key), field=f"shipping_address.{key}", max_length=limit)
        for key, limit in ADDRESS_FIELDS.items()
    }
    missing = [key for key, value in cleaned.items() if not value]
    if missing:
        raise InvalidInput("The shipping address is incomplete", missing=missing)
    if not COUNTRY_CODE.fullmatch(cleaned["country"]):
        raise InvalidInput('Country must be a two-letter code such as "US"')
    cleaned["country"] = cleaned["country"].upper()
    return cleaned


def _validated_email(email: str) -> str:
    email = _clean_text(email, field="email", max_length=MAX_EMAIL_LENGTH)
    try:
        validate_email(email)
    except DjangoValidationError as error:
        raise InvalidInput("A valid e-mail address is required", field="email") from error
    return email


def place_order(
    *,
    email: str,
    items: list[BasketItem],
    shipping_address: dict[str, Any],
    gateway: PaymentGateway | None = None,
) -> PlacedOrder:
    """Create the order and reserve its stock (one transaction), then start its payment.

    What it returns is all the answer needs: the order, its lines and its payment as written.
    """
    email = _validated_email(email)
    address = _validated_address(shipping_address)
    quantities = _validated_basket(items)
    order, lines = _create_order(email=email, quantities=quantities, address=address)
    payment = _start_payment(order=order, gateway=gateway or get_gateway())
    return PlacedOrder(order=order, lines=lines, payment=payment)


def _priced(products: dict[str, Product], quantities: dict[str, int]) -> tuple[Money, Money]:
    """The basket's subtotal and shipping fee, or why it cannot be one order."""
    unknown = sorted(set(quantities) - set(products))
    if unknown:
        raise UnknownSku(f"Unknown SKU: {', '.join(unknown)}", skus=unknown)
    currencies = {p.currency for p in products.values()}
    if len(currencies) != 1:
        raise MixedCurrencies(currencies=sorted(currencies))
    currency = currencies.pop()
    fee = shipping_fee(currency)
    subtotal = sum(
        (products[sku].price * qty for sku, qty in quantities.items()), Money.zero(currency)
    )
    if (subtotal + fee).minor > MAX_ORDER_MINOR:
        raise OrderTooLarge(f"The order total {subtotal + fee} is more than can be charged")
    return subtotal, fee


def _create_order(
    *, email: str, quantities: dict[str, int], address: dict[str, str]
) -> tuple[Order, list[OrderLine]]:
    """One transaction: the products read, the order, its lines in one INSERT, its audit
    entry, and last the stock, taken in one UPDATE under row locks held only until the commit
    just after (so checkouts of one product queue for a moment, not for the whole order)."""
    for _attempt in range(5):
        number = new_order_number()
        try:
            with transaction.atomic():
                products = sellable_products(quantities)
                subtotal, fee = _priced(products, quantities)
                ensure_stock_seen({products[sku]: qty for sku, qty in quantities.items()})
                order = Order.objects.create(
                    number=number,
                    email=email,
                    currency=subtotal.currency,
                    subtotal_minor=subtotal.minor,
                    shipping_minor=fee.minor,
                    grand_total_minor=(subtotal + fee).minor,
                    shipping_address=address,
                )
                lines = OrderLine.objects.bulk_create(
                    OrderLine(
                        order=order,
                        product=products[sku],
                        sku=sku,
                        name=products[sku].name,
                        unit_price_minor=products[sku].price_minor,
                        quantity=qty,
                        line_total_minor=products[sku].price_minor * qty,
                    )
                    for sku, qty in quantities.items()
                )
                record_for_order(
                    order,
                    action="order.placed",
                    actor_label="Customer",
                    after={"total": str(order.grand_total), "lines": quantities},
                    details={"email": email},
                )
                reserve_stock({products[sku].pk: qty for sku, qty in quantities.items()})
                return order, lines
        except IntegrityError:
            # An order number collision; anything else is a real error and raises again.
            if not Order.objects.filter(number=number).exists():
                raise
    raise RuntimeError("could not allocate an order number")


def _start_payment(*, order: Order, gateway: PaymentGateway) -> Payment:
    """Create the new order's PaymentIntent outside any transaction, then record it.

    If Stripe cannot be reached the order is cancelled and its stock returned, so a failed
    checkout holds nothing; the customer can simply check out again.
    """
    mode = CaptureMode(settings.SHOPKEEPER_CAPTURE)
    try:
        intent = gateway.create_payment_intent(
            amount=order.grand_total,
            order_number=order.number,
            capture_method=stripe_capture_method(mode),
            idempotency_key=f"order-{order.number}-payment-intent",
        )
    except Exception as error:
        # Any failure, ours or Stripe's: the customer gets nothing to pay, so hold nothing.
        detail = error.detail if isinstance(error, DomainError) else type(error).__name__
        _abandon_order(order, reason=f"payment could not be started: {detail}")
        raise
    return _record_new_payment(
        order=order, intent=intent, on_fulfillment=mode == CaptureMode.ON_FULFILLMENT
    )


def _record_new_payment(*, order: Order, intent: IntentSnapshot, on_fulfillment: bool) -> Payment:
    """The new order's first PaymentIntent and its audit entry, in one transaction.

    A plain INSERT: the PaymentIntent was created just now for an order nobody else has seen,
    so nothing can have recorded it yet (`payments.services.record_payment_intent`, which
    looks it up first, is for later attempts). Same row, same `payment.started` entry, and
    the customer's "order placed" mail with the order's link (it can be paid from there).
    """
    with transaction.atomic():
        payment = Payment.objects.create(
            order=order,
            intent_id=intent.id,
            client_secret=intent.client_secret,
            capture_method=intent.capture_method,
            capture_on_fulfillment=on_fulfillment,
            amount_minor=intent.amount,
            currency=intent.currency,
            intent_status=intent.status,
        )
        record_for_order(
            order,
            action="payment.started",
            actor_label="Shopkeeper",
            details={
                "payment_intent": intent.id,
                "capture_method": intent.capture_method,
                "capture_on_fulfillment": on_fulfillment,
            },
        )
        notify(order, Kind.ORDER_PLACED, event_key="placed")
    return payment


def _abandon_order(order: Order, *, reason: str) -> None:
    with transaction.atomic():
        locked = lock_order(pk=order.pk)
        locked.status = move_order(locked.status, OrderStatus.CANCELLED)
        locked.payment_status = move_payment(locked.payment_status, PaymentStatus.FAILED)
        locked.cancel_reason = reason[:500]
        locked.cancelled_at = locked.updated_at = timezone.now()
        locked.save(
            update_fields=[
                "status",
                "payment_status",
                "cancel_reason",
                "cancelled_at",
                "updated_at",
            ]
        )
        restock_order(locked)
        record_for_order(
            locked,
            action="order.abandoned",
            actor_label="Shopkeeper",
            after={"status": locked.status},
            details={"reason": reason},
        )
    logger.warning("Order %s abandoned: %s", order.number, reason)
