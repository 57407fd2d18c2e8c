"""The storefront cart: SKU → quantity, kept in the customer's session.

The cart stores no prices: every view reads them from the catalog, so the cart always shows what
checkout will charge. It holds nothing either: stock is only reserved when the order is placed,
and checkout checks everything again in its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import InsufficientStock, UnknownSku
from shopkeeper.checkout.services import MAX_LINES, MAX_QUANTITY, BasketItem, InvalidQuantity
from shopkeeper.errors import InvalidInput
from shopkeeper.money import Money

SESSION_KEY = "cart"


@dataclass(frozen=True, slots=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def line_total(self) -> Money:
        return self.product.price * self.quantity

    @property
    def problem(self) -> str:
        """Why checkout would refuse this line as it stands, or ""."""
        if self.product.stock < self.quantity:
            if self.product.stock == 0:
                return "Out of stock"
            return f"Only {self.product.stock} left"
        return ""


@dataclass(frozen=True, slots=True)
class CartContents:
    lines: list[CartLine]
    # SKUs that are in the session but no longer sold; dropped from the cart when read.
    dropped: list[str]

    @property
    def currencies(self) -> list[str]:
        return sorted({line.product.currency for line in self.lines})

    @property
    def subtotals(self) -> list[Money]:
        """One subtotal per currency: a cart may hold several, an order never does."""
        totals: dict[str, Money] = {}
        for line in self.lines:
            currency = line.product.currency
            totals[currency] = totals.get(currency, Money.zero(currency)) + line.line_total
        return [totals[currency] for currency in sorted(totals)]


class SessionCart:
    """Cart operations on a Django session (anything with the mapping protocol)."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def quantities(self) -> dict[str, int]:
        stored = self._session.get(SESSION_KEY) or {}
        return {str(sku): int(qty) for sku, qty in stored.items() if int(qty) > 0}

    def _save(self, quantities: dict[str, int]) -> None:
        self._session[SESSION_KEY] = quantities

    def add(self, *, sku: str, quantity: int) -> Product:
        """Add units of an active product; the cart never holds more than is in stock."""
        product = _sellable(sku)
        quantities = self.quantities()
        if product.sku not in quantities and len(quantities) >= MAX_LINES:
            raise InvalidInput(f"A cart holds at most {MAX_LINES} different items")
        total = quantities.get(product.sku, 0) + quantity
        _check_quantity(product, quantity=quantity, total=total)
        quantities[product.sku] = total
        self._save(quantities)
        return product

    def update(self, *, sku: str, quantity: int) -> None:
        """Set a line's quantity; zero removes the line."""
        quantities = self.quantities()
        if sku not in quantities:
            raise UnknownSku(f"{sku} is not in your cart", skus=[sku])
        if quantity == 0:
            self.remove(sku=sku)
            return
        _check_quantity(_sellable(sku), quantity=quantity, total=quantity)
        quantities[sku] = quantity
        self._save(quantities)

    def remove(self, *, sku: str) -> None:
        quantities = self.quantities()
        quantities.pop(sku, None)
        self._save(quantities)

    def clear(self) -> None:
        self._save({})

    def contents(self) -> CartContents:
        quantities = self.quantities()
        products = Product.objects.filter(sku__in=quantities, active=True).order_by("name", "id")
        lines = [CartLine(product=p, quantity=quantities[p.sku]) for p in products]
        dropped = sorted(set(quantities) - {line.product.sku for line in lines})
        if dropped:
            self._save({line.product.sku: line.quantity for line in lines})
        return CartContents(lines=lines, dropped=dropped)

    def basket_items(self) -> list[BasketItem]:
        return [BasketItem(sku=sku, quantity=qty) for sku, qty in sorted(self.quantities().items())]


def _sellable(sku: str) -> Product:
    product = Product.objects.filter(sku=sku, active=True).first()
    if product is None:
        raise UnknownSku(f"Unknown product {sku!r}", skus=[sku])
    return product


def _check_quantity(product: Product, *, quantity: int, total: int) -> None:
    if quantity < 1 or total > MAX_QUANTITY:
        raise InvalidQuantity(sku=product.sku)
    if total > product.stock:
        if product.stock == 0:
            raise InsufficientStock(f"{product.name} is out of stock", sku=product.sku)
        raise InsufficientStock(
            f"Only {product.stock} of {product.name} left in stock",
            sku=product.sku,
            available=product.stock,
        )
