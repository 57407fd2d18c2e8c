"""Integration tier: Django and PostgreSQL with the fake gateway; rows from tests/factories.py."""

from __future__ import annotations

import pytest
from django.test import Client

from shopkeeper.checkout.services import BasketItem, PlacedOrder, place_order
from shopkeeper.orders.models import Order
from tests.factories import ADDRESS, authorised_order, product, staff
from tests.fakes import FakeGateway


@pytest.fixture
def tier_refund_retry_delays() -> list[float]:
    """Retries happen (twice, as in production) but without waiting."""
    return [0, 0]


@pytest.fixture
def placed() -> PlacedOrder:
    """2 x MUG at 10.50 + 5.00 shipping, placed through checkout and not paid yet (MUG's stock:
    5 before, 3 after); the order with its payment, for tests of what follows checkout."""
    product("MUG", price="10.50", stock=5)
    return place_order(
        email="ada@example.com", items=[BasketItem("MUG", 2)], shipping_address=ADDRESS
    )


@pytest.fixture
def authorised(fake_gateway: FakeGateway) -> Order:
    """2 x MUG at 10.50 + 5.00 shipping: 26.00 USD authorised for manual capture."""
    return authorised_order(fake_gateway, price="10.50")


@pytest.fixture
def viewer() -> Client:
    """The back office, signed in as a viewer."""
    client = Client()
    client.force_login(staff("viewer"))
    return client
