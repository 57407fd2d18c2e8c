"""The customer's order link (issue 11): `/orders/{number}?key=…` opens the order from any
device with no session; a wrong or missing key is a 404; an unpaid order can be paid from it."""

from __future__ import annotations

import pytest
from django.test import Client

from shopkeeper.fulfilment.services import ship_order
from shopkeeper.orders.links import key_opens, order_key, order_link
from tests.factories import new_order, paid_order, staff

pytestmark = pytest.mark.django_db


def test_given_the_link_then_any_browser_sees_status_shipments_and_tracking(fake_gateway):
    order = paid_order(fake_gateway)
    ship_order(
        order_number=order.number, actor=staff("support"), carrier="DHL", tracking_number="JD014"
    )

    response = Client().get(order_link(order.number))

    assert response.status_code == 200
    page = response.content.decode()
    assert order.number in page and "Payment received" in page
    assert "DHL JD014" in page and 'data-testid="shipments"' in page
    assert 'data-testid="pay-link"' not in page


@pytest.mark.parametrize("key", ["", "nope", "x" * 27])
def test_given_a_wrong_or_missing_key_then_404_as_for_no_order(fake_gateway, key):
    order = paid_order(fake_gateway)

    assert Client().get(f"/orders/{order.number}", {"key": key}).status_code == 404
    assert Client().get(f"/orders/SK-NOPE?key={order_key('SK-NOPE')}").status_code == 404


def test_the_key_is_one_orders_and_not_anothers(fake_gateway):
    first, second = paid_order(fake_gateway), paid_order(fake_gateway, items={"CAP": 1})

    assert key_opens(first.number, order_key(first.number))
    assert not key_opens(second.number, order_key(first.number))
    assert (
        Client().get(f"/orders/{second.number}", {"key": order_key(first.number)}).status_code
        == 404
    )


def test_given_an_unpaid_order_then_its_link_lets_another_device_pay(fake_gateway):
    order = new_order(fake_gateway)
    other_device = Client()
    assert other_device.get(f"/checkout/pay/{order.number}").status_code == 404  # not its order

    page = other_device.get(order_link(order.number))

    assert 'data-testid="pay-link"' in page.content.decode()
    assert other_device.get(f"/checkout/pay/{order.number}").status_code == 200
