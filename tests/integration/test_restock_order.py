"""Giving an order's stock back (cancel, abandoned checkout): every line, once, in 4 statements."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import create_product
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.orders.locks import lock_order
from shopkeeper.orders.models import OrderLine
from shopkeeper.orders.stock import restock_order
from tests.factories import ADDRESS

pytestmark = pytest.mark.django_db


def stock() -> dict[str, int]:
    return dict(Product.objects.values_list("sku", "stock"))


def test_given_three_lines_one_partly_returned_when_restocking_then_the_rest_back_in_4_statements():
    for sku in ("MUG", "CAP", "TEE"):
        create_product(sku=sku, name=sku, price="1.00", currency="USD", stock=10)
    placed = place_order(
        email="ada@example.com",
        items=[BasketItem("TEE", 1), BasketItem("MUG", 2), BasketItem("CAP", 3)],
        shipping_address=dict(ADDRESS),
    )
    OrderLine.objects.filter(order=placed.order, sku="CAP").update(restocked_quantity=1)

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        returned = restock_order(lock_order(pk=placed.order.pk))

    assert returned == {"TEE": 1, "MUG": 2, "CAP": 2}
    assert stock() == {"TEE": 10, "MUG": 10, "CAP": 9}  # CAP's first unit came back earlier
    lines = OrderLine.objects.filter(order=placed.order)
    assert all(line.restocked_quantity == line.quantity for line in lines)
    # The order's lock, then: the lines locked, the products locked, one UPDATE of each.
    assert len(queries) == 1 + 4, "\n".join(q["sql"] for q in queries)


def test_given_everything_returned_when_restocking_again_then_nothing_changes():
    create_product(sku="MUG", name="Mug", price="1.00", currency="USD", stock=5)
    placed = place_order(
        email="ada@example.com", items=[BasketItem("MUG", 2)], shipping_address=dict(ADDRESS)
    )
    with transaction.atomic():
        restock_order(lock_order(pk=placed.order.pk))

    with transaction.atomic():
        assert restock_order(lock_order(pk=placed.order.pk)) == {}

    assert stock() == {"MUG": 5}
