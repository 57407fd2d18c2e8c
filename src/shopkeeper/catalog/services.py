"""Catalog writes: products and the stock they hold."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, When

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


def lock_products(skus: Collection[str]) -> dict[str, Product]:
    """The active products with these SKUs, by SKU, locked until the transaction ends.

    One statement takes every row lock, in id order: two baskets holding the same products
    in any order queue on the first one they share instead of deadlocking. Call inside a
    transaction; what the rows say (price, stock) then holds until it ends.
    """
    products = Product.objects.filter(sku__in=skus, active=True).order_by("id")
    return {product.sku: product for product in products.select_for_update()}


def reserve_stock(quantities: Mapping[Product, int]) -> None:
    """Take units out of stock, all or nothing, in one UPDATE.

    The products must be locked in this transaction (`lock_products`): their stock cannot
    change under us, so it is checked here and the CHECK constraint backs it up.
    """
    for product in sorted(quantities, key=lambda product: product.pk):
        if product.stock < quantities[product]:
            raise InsufficientStock(
                f"Only {product.stock} of {product.sku} left",
                sku=product.sku,
                available=product.stock,
            )
    _change_stock({product.pk: -quantity for product, quantity in quantities.items()})
    for product, quantity in quantities.items():
        product.stock -= quantity


def return_stock(product_id: int, quantity: int) -> None:
    if quantity > 0:
        Product.objects.filter(pk=product_id).update(stock=F("stock") + quantity)


def return_stock_of(quantities: Mapping[int, int]) -> None:
    """Give units back to several products (by id) in one UPDATE, rows locked in id order."""
    changes = {product_id: units for product_id, units in quantities.items() if units > 0}
    if changes:
        list(Product.objects.filter(pk__in=changes).order_by("id").select_for_update())
        _change_stock(changes)


def _change_stock(changes: Mapping[int, int]) -> None:
    """One UPDATE adding `changes[id]` (negative: taking) to each product's stock."""
    if not changes:
        return
    Product.objects.filter(pk__in=changes).update(
        stock=Case(
            *(
                When(pk=product_id, then=F("stock") + delta)
                for product_id, delta in changes.items()
            ),
            output_field=IntegerField(),
        )
    )
