"""Catalog writes: products and the stock they hold."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import IntegrityError, transaction
from django.db.models import F

from shopkeeper.audit.services import record
from shopkeeper.catalog.models import Product
from shopkeeper.errors import Conflict, InvalidInput
from shopkeeper.money import Money


class SkuTaken(Conflict):
    code = "sku_taken"
    title = "A product with this SKU already exists"


class InsufficientStock(Conflict):
    code = "insufficient_stock"
    title = "Not enough stock"


class UnknownSku(InvalidInput):
    code = "unknown_sku"
    title = "Unknown SKU"


def create_product(
    *, sku: str, name: str, price: str, currency: str, stock: int, actor: object = None
) -> Product:
    sku, name = sku.strip(), name.strip()
    if not sku or not name:
        raise InvalidInput("A product needs a SKU and a name")
    if stock < 0:
        raise InvalidInput("Stock cannot be negative")
    money = Money.parse(price, currency)
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
