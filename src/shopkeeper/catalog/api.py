"""Admin catalog API: POST and GET /api/admin/products.

No `from __future__ import annotations` here: django-ninja reads the view's annotations through
the `requires` wrapper, and string annotations would be resolved in the wrong module.
"""

from django.http import HttpRequest
from ninja import Schema, Status
from pydantic import StrictInt

from shopkeeper.accounts.access import acting_user, requires
from shopkeeper.accounts.api_auth import GuardedRouter, api_auth
from shopkeeper.accounts.permissions import Permission
from shopkeeper.catalog import services
from shopkeeper.catalog.models import Product

router = GuardedRouter(tags=["catalog"], auth=api_auth)


class ProductIn(Schema):
    sku: str
    name: str
    price: str  # a decimal string in the currency, such as "12.00"
    currency: str
    stock: StrictInt = 0


class ProductOut(Schema):
    id: int
    sku: str
    name: str
    price: str
    price_minor: int
    currency: str
    stock: int
    active: bool


def product_out(product: Product) -> ProductOut:
    return ProductOut(
        id=product.pk,
        sku=product.sku,
        name=product.name,
        price=product.price.to_decimal_string(),
        price_minor=product.price_minor,
        currency=product.currency,
        stock=product.stock,
        active=product.active,
    )


@router.post("", response={201: ProductOut})
@requires(Permission.CATALOG_MANAGE)
def create_product(request: HttpRequest, payload: ProductIn) -> Status[ProductOut]:
    product = services.create_product(**payload.dict(), actor=acting_user(request))
    return Status(201, product_out(product))


@router.get("", response=list[ProductOut])
@requires(Permission.ORDERS_VIEW)
def list_products(request: HttpRequest) -> list[ProductOut]:
    return [product_out(p) for p in Product.objects.all()]
