"""POST /api/checkout: an order, reserved stock and a PaymentIntent; or a problem and nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import create_product
from shopkeeper.checkout.answer import placed_order_detail
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.errors import PaymentOutcomeUnknown, PaymentRequestInvalid
from shopkeeper.orders.models import Order, OrderLine
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.payments.models import Payment
from tests.factories import address

pytestmark = pytest.mark.django_db

URL = "/api/checkout"
ADDRESS = address(name="Ada Lovelace", country="us")


def body(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "email": "ada@example.com",
        "items": [{"sku": "MUG", "quantity": 2}],
        "shipping_address": dict(ADDRESS),
    }
    payload.update(overrides)
    return payload


def post(client, payload: Any):
    data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.post(URL, data=data, content_type="application/json")


@pytest.fixture
def catalog():
    create_product(sku="MUG", name="Mug", price="10.50", currency="USD", stock=5)
    create_product(sku="CAP", name="Cap", price="7.25", currency="USD", stock=1)
    create_product(sku="TEA", name="Sencha", price="1200", currency="JPY", stock=9)
    create_product(sku="DATES", name="Dates", price="4.250", currency="KWD", stock=9)


def stock() -> dict[str, int]:
    return dict(Product.objects.values_list("sku", "stock"))


def test_given_stock_when_checking_out_then_201_with_order_and_payment(
    client, catalog, fake_gateway
):
    response = post(
        client, body(items=[{"sku": "MUG", "quantity": 2}, {"sku": "CAP", "quantity": 1}])
    )

    assert response.status_code == 201, response.content
    data = response.json()
    order, payment = data["order"], data["payment"]
    assert order["number"].startswith("SK-")
    assert (order["status"], order["payment_status"], order["currency"]) == (
        "pending",
        "pending",
        "USD",
    )
    assert [
        (line["sku"], line["quantity"], line["unit_price"], line["line_total"])
        for line in order["lines"]
    ] == [
        ("MUG", 2, "10.50", "21.00"),
        ("CAP", 1, "7.25", "7.25"),
    ]
    assert (order["subtotal"], order["shipping"], order["grand_total"]) == (
        "28.25",
        "5.00",
        "33.25",
    )
    assert order["grand_total_minor"] == 3325
    assert order["shipping_address"]["country"] == "US"
    assert payment["publishable_key"].startswith("pk_")
    intent = fake_gateway.intents[payment["payment_intent_id"]]
    assert payment["client_secret"] == intent.client_secret
    assert (intent.amount, intent.currency, intent.order_number) == (3325, "USD", order["number"])
    assert fake_gateway.calls == [
        ("create_payment_intent", f"order-{order['number']}-payment-intent")
    ]
    assert stock() == {"MUG": 3, "CAP": 0, "TEA": 9, "DATES": 9}
    assert Payment.objects.get().intent_id == payment["payment_intent_id"]
    assert AuditEntry.objects.filter(action="order.placed", target_id=order["number"]).exists()


def test_given_order_when_catalog_price_changes_then_order_keeps_its_price_snapshot(
    client, catalog
):
    number = post(client, body()).json()["order"]["number"]

    Product.objects.filter(sku="MUG").update(price_minor=99_00, name="Renamed")

    line = OrderLine.objects.get(order__number=number)
    assert (line.unit_price_minor, line.name, line.line_total_minor) == (1050, "Mug", 2100)
    assert Order.objects.get(number=number).grand_total_minor == 2600


def test_given_repeated_sku_lines_when_checking_out_then_quantities_are_summed(client, catalog):
    response = post(
        client, body(items=[{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 2}])
    )

    assert response.status_code == 201
    assert [(line["sku"], line["quantity"]) for line in response.json()["order"]["lines"]] == [
        ("MUG", 3)
    ]
    assert stock()["MUG"] == 2


@pytest.mark.parametrize(
    ("sku", "quantity", "total", "total_minor", "shipping"),
    [("TEA", 2, "3200", 3200, "800"), ("DATES", 3, "14.250", 14250, "1.500")],
)
def test_given_zero_and_three_decimal_currencies_when_checking_out_then_amounts_use_their_exponent(
    client, catalog, fake_gateway, sku, quantity, total, total_minor, shipping
):
    response = post(client, body(items=[{"sku": sku, "quantity": quantity}]))

    assert response.status_code == 201
    order = response.json()["order"]
    assert (order["grand_total"], order["grand_total_minor"], order["shipping"]) == (
        total,
        total_minor,
        shipping,
    )
    assert (
        fake_gateway.intents[response.json()["payment"]["payment_intent_id"]].amount == total_minor
    )


BAD_REQUESTS = {
    "unknown sku": (body(items=[{"sku": "NOPE", "quantity": 1}]), 422, "unknown_sku"),
    "inactive sku": (body(items=[{"sku": "GONE", "quantity": 1}]), 422, "unknown_sku"),
    # A NUL anywhere in a request is refused before any view (shopkeeper.request_guard).
    "nul in sku": (body(items=[{"sku": "MU\u0000G", "quantity": 1}]), 422, "invalid_input"),
    "one line short of stock": (
        body(items=[{"sku": "MUG", "quantity": 1}, {"sku": "CAP", "quantity": 2}]),
        409,
        "insufficient_stock",
    ),
    "zero quantity": (body(items=[{"sku": "MUG", "quantity": 0}]), 422, "invalid_quantity"),
    "negative quantity": (body(items=[{"sku": "MUG", "quantity": -1}]), 422, "invalid_quantity"),
    "huge quantity": (body(items=[{"sku": "MUG", "quantity": 10**30}]), 422, "invalid_quantity"),
    "over the per-order cap": (
        body(items=[{"sku": "MUG", "quantity": 1001}]),
        422,
        "invalid_quantity",
    ),
    "summed over the cap": (
        body(items=[{"sku": "MUG", "quantity": 600}, {"sku": "MUG", "quantity": 401}]),
        422,
        "invalid_quantity",
    ),
    "fractional quantity": (body(items=[{"sku": "MUG", "quantity": 1.5}]), 422, "validation_error"),
    "float quantity": (body(items=[{"sku": "MUG", "quantity": 2.0}]), 422, "validation_error"),
    "string quantity": (body(items=[{"sku": "MUG", "quantity": "2"}]), 422, "validation_error"),
    "boolean quantity": (body(items=[{"sku": "MUG", "quantity": True}]), 422, "validation_error"),
    "missing quantity": (body(items=[{"sku": "MUG"}]), 422, "validation_error"),
    "total too large": (body(items=[{"sku": "GOLD", "quantity": 1000}]), 422, "order_too_large"),
    "mixed currencies": (
        body(items=[{"sku": "MUG", "quantity": 1}, {"sku": "TEA", "quantity": 1}]),
        422,
        "mixed_currencies",
    ),
    "empty basket": (body(items=[]), 422, "invalid_input"),
    "items not a list": (body(items={"sku": "MUG"}), 422, "validation_error"),
    "bad email": (body(email="not-an-email"), 422, "invalid_input"),
    "email too long": (body(email="a" * 250 + "@example.com"), 422, "invalid_input"),
    "missing email": (
        {"items": [{"sku": "MUG", "quantity": 1}], "shipping_address": ADDRESS},
        422,
        "validation_error",
    ),
    "missing address field": (
        body(shipping_address={k: v for k, v in ADDRESS.items() if k != "city"}),
        422,
        "validation_error",
    ),
    "blank address field": (
        body(shipping_address={**ADDRESS, "line1": "   "}),
        422,
        "invalid_input",
    ),
    "bad country": (body(shipping_address={**ADDRESS, "country": "USA"}), 422, "invalid_input"),
    "nul in address": (
        body(shipping_address={**ADDRESS, "name": "A\u0000da"}),
        422,
        "invalid_input",
    ),
    "name too long": (body(shipping_address={**ADDRESS, "name": "A" * 201}), 422, "invalid_input"),
    "not json": ("{not json", 400, "bad_request"),
    "json array": ([1, 2], 422, "validation_error"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS.keys())
def test_given_bad_checkout_when_posted_then_problem_and_nothing_created(
    client, catalog, fake_gateway, case
):
    Product.objects.create(
        sku="GONE", name="Gone", price_minor=100, currency="USD", stock=5, active=False
    )
    create_product(sku="GOLD", name="Gold", price="999999999999999.99", currency="USD", stock=1000)
    payload, status, code = BAD_REQUESTS[case]
    before = stock()

    response = post(client, payload)

    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["title"]
    assert Order.objects.count() == 0
    assert Payment.objects.count() == 0
    assert stock() == before
    assert fake_gateway.calls == []
    assert not AuditEntry.objects.filter(action__startswith="order.").exists()


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (PaymentOutcomeUnknown("Stripe did not answer"), 503, "payment_outcome_unknown"),
        (PaymentRequestInvalid("Stripe rejected it"), 502, "payment_request_invalid"),
    ],
)
def test_given_stripe_failing_when_checking_out_then_problem_and_order_abandoned_with_stock_back(
    client, catalog, fake_gateway, error, status, code
):
    fake_gateway.fail_next["create_payment_intent"] = [error]

    response = post(client, body())

    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    order = Order.objects.get()
    assert (order.status, order.payment_status) == ("cancelled", "failed")
    assert "payment could not be started" in order.cancel_reason
    assert [line.restocked_quantity for line in order.lines.all()] == [2]
    assert stock()["MUG"] == 5
    assert not Payment.objects.exists()
    assert AuditEntry.objects.filter(action="order.abandoned", target_id=order.number).exists()


def test_given_last_units_when_checking_out_again_then_insufficient_stock_names_what_is_left(
    client, catalog
):
    assert post(client, body(items=[{"sku": "MUG", "quantity": 4}])).status_code == 201

    response = post(client, body(items=[{"sku": "MUG", "quantity": 2}]))

    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock"
    assert response.json()["available"] == 1
    assert stock()["MUG"] == 1


@pytest.mark.parametrize("capture", ["automatic", "manual"])
def test_given_a_new_order_when_answered_then_its_detail_is_the_one_read_back_from_the_database(
    catalog, settings, capture
):
    """The answer is built from what checkout wrote (no query); it must be what the order's
    own detail reads back, field for field, or the two have drifted apart."""
    settings.SHOPKEEPER_CAPTURE = capture
    placed = place_order(
        email="ada@example.com",
        items=[BasketItem("CAP", 1), BasketItem("MUG", 2)],
        shipping_address=dict(ADDRESS),
    )

    answer = placed_order_detail(placed)

    assert answer == order_detail(Order.objects.get(pk=placed.order.pk))
    assert [line["sku"] for line in answer["lines"]] == ["CAP", "MUG"]
