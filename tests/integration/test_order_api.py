"""GET /api/admin/orders/{number}: every amount as a decimal string and in minor units."""

import pytest

from tests.factories import address, paid_order, staff, token_for

pytestmark = pytest.mark.django_db

ADDRESS = address(country="JP")


@pytest.fixture
def viewer_token():
    return token_for(staff("viewer", "viewer@example.com"))


def get(client, number, raw):
    return client.get(f"/api/admin/orders/{number}", HTTP_AUTHORIZATION=f"Bearer {raw}")


AMOUNTS = (
    "subtotal",
    "shipping",
    "grand_total",
    "authorized",
    "captured",
    "refunded",
    "refundable",
)


@pytest.mark.parametrize(
    ("price", "currency", "expected"),
    [
        (
            "10.50",
            "USD",
            {
                "subtotal": ("21.00", 2100),
                "shipping": ("5.00", 500),
                "grand_total": ("26.00", 2600),
                "authorized": ("26.00", 2600),
                "captured": ("26.00", 2600),
                "refunded": ("0.00", 0),
                "refundable": ("26.00", 2600),
            },
        ),
        (
            "1200",
            "JPY",
            {
                "subtotal": ("2400", 2400),
                "shipping": ("800", 800),
                "grand_total": ("3200", 3200),
                "authorized": ("3200", 3200),
                "captured": ("3200", 3200),
                "refunded": ("0", 0),
                "refundable": ("3200", 3200),
            },
        ),
        (
            "4.250",
            "KWD",
            {
                "subtotal": ("8.500", 8500),
                "shipping": ("1.500", 1500),
                "grand_total": ("10.000", 10000),
                "authorized": ("10.000", 10000),
                "captured": ("10.000", 10000),
                "refunded": ("0.000", 0),
                "refundable": ("10.000", 10000),
            },
        ),
    ],
)
def test_given_paid_order_when_fetched_then_amounts_as_strings_and_minor_units(
    client, viewer_token, fake_gateway, price, currency, expected
):
    number = paid_order(
        fake_gateway, items={"ITEM": 2}, price=price, currency=currency, shipping_address=ADDRESS
    ).number

    response = get(client, number, viewer_token)

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["number"], data["status"], data["payment_status"], data["currency"]) == (
        number,
        "processing",
        "paid",
        currency,
    )
    assert {name: (data[name], data[f"{name}_minor"]) for name in AMOUNTS} == expected
    (line,) = data["lines"]
    assert (line["sku"], line["quantity"], line["unit_price"], line["unit_price_minor"]) == (
        "ITEM",
        2,
        price,
        expected["subtotal"][1] // 2,
    )
    assert isinstance(data["grand_total"], str) and isinstance(data["grand_total_minor"], int)
    assert data["payment"]["payment_intent_id"].startswith("pi_")
    assert (data["payment"]["card_brand"], data["payment"]["card_last4"]) == ("visa", "4242")


def test_given_authorised_order_when_fetched_then_nothing_captured_or_refundable(
    client, viewer_token, fake_gateway, settings
):
    settings.SHOPKEEPER_CAPTURE = "manual"
    number = paid_order(
        fake_gateway, items={"ITEM": 2}, price="10.50", currency="USD", shipping_address=ADDRESS
    ).number

    data = get(client, number, viewer_token).json()

    assert data["payment_status"] == "authorized"
    assert (data["authorized"], data["captured"], data["refundable"]) == ("26.00", "0.00", "0.00")


def test_given_unknown_number_when_fetched_then_404_problem(client, viewer_token):
    response = get(client, "SK-NOPE", viewer_token)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "order_not_found"


def test_given_no_token_when_fetched_then_401_problem(client, fake_gateway):
    number = paid_order(
        fake_gateway, items={"ITEM": 1}, price="10.50", currency="USD", shipping_address=ADDRESS
    ).number

    response = client.get(f"/api/admin/orders/{number}")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_authenticated"
    assert "email" not in response.json()
