"""Catalog writes: products and the stock they hold."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import IntegrityError, transaction
from django.db.models import F

from shopkeeper.accounts.actors import Actor
from shopkeeper.audit.services import record
from shopkeeper.catalog.models import Product
from shopkeeper.errors import Conflict, InvalidInput
from shopkeeper.money import Money
from shopkeeper.shipping import shipping_fee


class SkuTaken(Conflict):
    code = "sku_taken"
    title = "A product with this SKU already exists"


class InsufficientStock(Conflict):
    code = "insufficient_stock"
    title = "Not enough stock"


class UnknownSku(InvalidInput):
    code = "unknown_sku"
    title = "Unknown SKU"


MAX_SKU_LENGTH = 64  # the column's length
MAX_NAME_LENGTH = 200
MAX_STOCK = 1_000_000_000  # well inside the column's 32-bit range


def _clean_text(value: str, *, field: str, max_length: int) -> str:
    """Trimmed text, required, within the column; control characters (NUL breaks PostgreSQL)
    are refused rather than stored."""
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"A product needs a {field}", field=field)
    if len(text) > max_length:
        raise InvalidInput(f"The {field} is longer than {max_length} characters", field=field)
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise InvalidInput(f"The {field} contains control characters", field=field)
    return text


def create_product(
    *, sku: str, name: str, price: str, currency: str, stock: int, actor: Actor | None = None
) -> Product:
    sku = _clean_text(sku, field="sku", max_length=MAX_SKU_LENGTH)
    name = _clean_text(name, field="name", max_length=MAX_NAME_LENGTH)
    if isinstance(stock, bool) or not isinstance(stock, int) or not 0 <= stock <= MAX_STOCK:
        raise InvalidInput(f"Stock must be a whole number from 0 to {MAX_STOCK}", field="stock")
    money = Money.parse(price, currency)
    shipping_fee(money.currency)  # refuse a currency the shop cannot ship in
    try:
        with transaction.atomic():
            product = Product.objects.create(
                sku=sku, name=name, price_minor=money.minor, currency=money.currency, stock=stock
            )
            record(
                action="product.created",
                target_type="product",
                target_id=product.pk,
                target_label=sku,
                actor=actor,
                after={"sku": sku, "price": str(money), "stock": stock},
            )
    except IntegrityError as error:
        raise SkuTaken(f"SKU {sku!r} already exists", sku=sku) from error
    return product


def reserve_stock(quantities: Mapping[int, int]) -> None:
    """Take units out of stock, all or nothing. Call inside the order's transaction.

    Each decrement is one conditional UPDATE, so concurrent checkouts on PostgreSQL can never
    take the last unit twice; rows are touched in id order so two baskets cannot deadlock.
    """
    for product_id in sorted(quantities):
        quantity = quantities[product_id]
        updated = Product.objects.filter(pk=product_id, stock__gte=quantity).update(
            stock=F("stock") - quantity
        )
        if not updated:
            product = Product.objects.get(pk=product_id)
            raise InsufficientStock(
                f"Only {product.stock} of {product.sku} left",
                sku=product.sku,
                available=product.stock,
            )


def return_stock(product_id: int, quantity: int) -> None:
    if quantity > 0:
        Product.objects.filter(pk=product_id).update(stock=F("stock") + quantity)
