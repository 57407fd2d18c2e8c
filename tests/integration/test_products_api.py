"""Admin products API: bearer-token auth, the catalog.manage permission, exact money parsing."""

import json

import pytest
from django.test import Client
from django.utils import timezone

from shopkeeper.accounts.models import ApiToken, User
from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/admin/products"


def token_for(role: str, *, email: str | None = None) -> str:
    return factories.token_for(factories.staff(role, email or f"{role}@example.com"))


def auth(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def create(client, payload, raw):
    return client.post(URL, data=json.dumps(payload), content_type="application/json", **auth(raw))


MUG = {"sku": "MUG", "name": "Mug", "price": "12.00", "currency": "USD", "stock": 4}


def assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_given_catalog_manager_when_creating_product_then_201_and_audited(client, role):
    raw = token_for(role)

    response = create(client, MUG, raw)

    assert response.status_code == 201, response.content
    data = response.json()
    assert {k: data[k] for k in ("sku", "name", "price", "price_minor", "currency", "stock")} == {
        "sku": "MUG",
        "name": "Mug",
        "price": "12.00",
        "price_minor": 1200,
        "currency": "USD",
        "stock": 4,
    }
    entry = AuditEntry.objects.get(action="product.created")
    assert (entry.target_label, entry.actor_email) == ("MUG", f"{role}@example.com")


@pytest.mark.parametrize(
    ("price", "currency", "shown", "minor"),
    [
        ("1200", "jpy", "1200", 1200),
        ("4.250", "KWD", "4.250", 4250),
        ("4.25", "KWD", "4.250", 4250),
        ("0.5", "EUR", "0.50", 50),
        ("7", "USD", "7.00", 700),
    ],
)
def test_given_currency_exponent_when_creating_product_then_price_parsed_exactly(
    client, price, currency, shown, minor
):
    response = create(client, {**MUG, "price": price, "currency": currency}, token_for("owner"))

    assert response.status_code == 201, response.content
    assert (response.json()["price"], response.json()["price_minor"]) == (shown, minor)
    assert response.json()["currency"] == currency.upper()


BAD_PRODUCTS = {
    "too many decimals": ({"price": "12.001"}, 422, "invalid_amount"),
    "decimals on yen": ({"price": "12.5", "currency": "JPY"}, 422, "invalid_amount"),
    "kwd last digit": ({"price": "1.234", "currency": "KWD"}, 422, "invalid_amount"),
    "negative price": ({"price": "-1.00"}, 422, "invalid_amount"),
    "not a number": ({"price": "twelve"}, 422, "invalid_amount"),
    "price with spaces": ({"price": " 12.00 "}, 422, "invalid_amount"),
    "price with a no-break space": ({"price": "12.00\u00a0"}, 422, "invalid_amount"),
    "price as a float": ({"price": 12.0}, 422, "validation_error"),
    "unknown currency": ({"currency": "XXX"}, 422, "unsupported_currency"),
    "negative stock": ({"stock": -1}, 422, "invalid_input"),
    "huge stock": ({"stock": 10**12}, 422, "invalid_input"),
    "stock as a string": ({"stock": "4"}, 422, "validation_error"),
    "blank sku": ({"sku": "  "}, 422, "invalid_input"),
    "long sku": ({"sku": "S" * 65}, 422, "invalid_input"),
    "nul in name": ({"name": "Mu\u0000g"}, 422, "invalid_input"),
    "long name": ({"name": "N" * 201}, 422, "invalid_input"),
    "missing price": ({"price": None}, 422, "validation_error"),
}


@pytest.mark.parametrize("case", BAD_PRODUCTS.keys())
def test_given_bad_product_when_created_then_problem_and_nothing_stored(client, case):
    change, status, code = BAD_PRODUCTS[case]
    payload = {k: v for k, v in {**MUG, **change}.items() if v is not None}

    response = create(client, payload, token_for("owner"))

    assert_problem(response, status, code)
    assert not Product.objects.exists()
    assert not AuditEntry.objects.filter(action="product.created").exists()


def test_given_existing_sku_when_created_again_then_409_sku_taken(client):
    raw = token_for("owner")
    assert create(client, MUG, raw).status_code == 201

    response = create(client, {**MUG, "name": "Other mug"}, raw)

    assert_problem(response, 409, "sku_taken")
    assert Product.objects.get().name == "Mug"


def test_given_viewer_when_creating_product_then_403_permission_denied_and_audited(client):
    response = create(client, MUG, token_for("viewer"))

    assert_problem(response, 403, "permission_denied")
    assert not Product.objects.exists()
    denied = AuditEntry.objects.get(action="permission.denied")
    assert (denied.target_id, denied.actor_email) == ("catalog.manage", "viewer@example.com")


@pytest.mark.parametrize("role", ["support", "viewer"])
def test_given_role_without_catalog_manage_when_creating_then_403(client, role):
    assert_problem(create(client, MUG, token_for(role)), 403, "permission_denied")


def test_given_viewer_when_listing_products_then_200(client):
    create(client, MUG, token_for("owner"))

    response = client.get(URL, **auth(token_for("viewer")))

    assert response.status_code == 200
    assert [(p["sku"], p["price"], p["stock"]) for p in response.json()] == [("MUG", "12.00", 4)]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer shk_not_a_token"},
        {"HTTP_AUTHORIZATION": "Basic b3duZXI6cHc="},
    ],
)
def test_given_no_valid_credentials_when_calling_then_401_problem(client, headers):
    assert_problem(client.get(URL, **headers), 401, "not_authenticated")
    response = client.post(URL, data=json.dumps(MUG), content_type="application/json", **headers)
    assert_problem(response, 401, "not_authenticated")
    assert not Product.objects.exists()


def test_given_revoked_token_when_calling_then_401(client):
    raw = token_for("owner")
    ApiToken.objects.update(revoked_at=timezone.now())

    assert_problem(create(client, MUG, raw), 401, "not_authenticated")


def test_given_deactivated_user_when_calling_then_401(client):
    raw = token_for("owner")
    User.objects.update(is_active=False)

    assert_problem(create(client, MUG, raw), 401, "not_authenticated")


def test_given_session_without_csrf_token_when_creating_then_403_csrf_failed():
    browser = Client(enforce_csrf_checks=True)
    user = factories.staff("owner", "owner@example.com")
    browser.force_login(user)

    response = browser.post(URL, data=json.dumps(MUG), content_type="application/json")

    assert_problem(response, 403, "csrf_failed")
    assert not Product.objects.exists()


def test_given_a_currency_without_a_shipping_fee_when_creating_a_product_then_422_and_nothing(
    db,
):
    from shopkeeper.catalog.services import create_product
    from shopkeeper.errors import UnsupportedCurrency

    with pytest.raises(UnsupportedCurrency, match="CLP"):
        create_product(sku="EMP", name="Empanada", price="2500", currency="CLP", stock=1)

    assert not Product.objects.filter(sku="EMP").exists()
