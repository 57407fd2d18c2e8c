"""Checkouts racing for the last units on PostgreSQL: no oversell, stock never negative."""

from __future__ import annotations

import json
from collections import Counter
from typing import TypeVar

import pytest
from django.test import Client

from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import create_product
from shopkeeper.orders.models import Order, OrderLine
from shopkeeper.payments.models import Payment
from tests.factories import ADDRESS
from tests.racing import race_ok

T = TypeVar("T")

pytestmark = pytest.mark.django_db(transaction=True)


def checkout(items: list[dict[str, object]]) -> int:
    payload = {"email": "buyer@example.com", "items": items, "shipping_address": ADDRESS}
    response = Client().post(
        "/api/checkout", data=json.dumps(payload), content_type="application/json"
    )
    if response.status_code != 201:
        assert response.json()["code"] == "insufficient_stock", response.content
    return response.status_code


def stock(sku: str) -> int:
    return Product.objects.get(sku=sku).stock


def test_given_3_units_when_15_buyers_race_then_exactly_3_orders_and_stock_0(fake_gateway):
    create_product(sku="LAST", name="Last one", price="9.99", currency="USD", stock=3)

    statuses = race_ok(15, lambda i: checkout([{"sku": "LAST", "quantity": 1}]))

    assert Counter(statuses) == {201: 3, 409: 12}
    assert stock("LAST") == 0
    assert Order.objects.count() == 3
    assert sum(OrderLine.objects.values_list("quantity", flat=True)) == 3
    assert Payment.objects.count() == 3
    assert len([op for op, _ in fake_gateway.calls if op == "create_payment_intent"]) == 3


def test_given_5_units_when_12_buyers_race_for_2_each_then_2_orders_and_1_left(fake_gateway):
    create_product(sku="PAIR", name="Pair", price="3.00", currency="USD", stock=5)

    statuses = race_ok(12, lambda i: checkout([{"sku": "PAIR", "quantity": 2}]))

    assert Counter(statuses) == {201: 2, 409: 10}
    assert stock("PAIR") == 1


def test_given_two_scarce_products_when_baskets_race_in_both_orders_then_no_deadlock_or_oversell(
    fake_gateway,
):
    create_product(sku="A", name="A", price="1.00", currency="USD", stock=4)
    create_product(sku="B", name="B", price="1.00", currency="USD", stock=4)
    baskets = (
        [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}],
        [{"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 1}],
    )

    statuses = race_ok(16, lambda i: checkout(baskets[i % 2]))

    assert Counter(statuses) == {201: 4, 409: 12}
    assert (stock("A"), stock("B")) == (0, 0)
    for order in Order.objects.all():
        assert sorted(order.lines.values_list("sku", flat=True)) == ["A", "B"]
