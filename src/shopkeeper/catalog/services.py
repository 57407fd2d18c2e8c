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


def sellable_products(skus: Collection[str]) -> dict[str, Product]:
    """The active products with these SKUs, by SKU: one read, no lock."""
    return {product.sku: product for product in Product.objects.filter(sku__in=skus, active=True)}


def reserve_stock(quantities: Mapping[int, int]) -> None:
    """Take units out of stock (product id -> units), all or nothing.

    The rows are locked in one statement, in id order, so two baskets holding the same
    products in any order queue instead of deadlocking; the stock they then show cannot change
    under us, so it is checked here (the CHECK constraint backs it up) and taken in one UPDATE.
    Call inside the order's transaction, as its last step: every checkout of these products
    waits for the locks until the transaction ends.
    """
    locked = _locked_stock(quantities)
    for product_id in sorted(quantities):
        sku, stock = locked.get(product_id, ("", 0))
        _ensure_enough(sku, stock, quantities[product_id])
    _change_stock({product_id: -units for product_id, units in quantities.items()})


def ensure_stock_seen(quantities: Mapping[Product, int]) -> None:
    """Refuse at once what the products as read cannot cover: stock only a restock since the
    read could make enough. `reserve_stock` decides, under the rows' locks."""
    for product in sorted(quantities, key=lambda product: product.pk):
        _ensure_enough(product.sku, product.stock, quantities[product])


def _ensure_enough(sku: str, stock: int, wanted: int) -> None:
    if stock < wanted:
        raise InsufficientStock(f"Only {stock} of {sku} left", sku=sku, available=stock)


def return_stock(product_id: int, quantity: int) -> None:
    if quantity > 0:
        Product.objects.filter(pk=product_id).update(stock=F("stock") + quantity)


def return_stock_of(quantities: Mapping[int, int]) -> None:
    """Give units back to several products (by id) in one UPDATE, rows locked in id order."""
    changes = {product_id: units for product_id, units in quantities.items() if units > 0}
    if changes:
        _locked_stock(changes)
        _change_stock(changes)


def _locked_stock(product_ids: Collection[int]) -> dict[int, tuple[str, int]]:
    """Each product's SKU and stock, its row locked until the transaction ends, in id order."""
    rows = Product.objects.filter(pk__in=product_ids).order_by("id").select_for_update()
    return {pk: (sku, stock) for pk, sku, stock in rows.values_list("pk", "sku", "stock")}


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
