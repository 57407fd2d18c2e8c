"""Shipments (issue 11): ship lines of a paid or authorised order, confirm delivery, the order's
fulfilment status and actions, the refusals, the cancel rule, and closing once all is done."""

from __future__ import annotations

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.fulfilment.models import Shipment
from shopkeeper.refunds.rules import LineRequest
from tests.factories import authorised_order, new_order, paid_order, requested_refund, staff
from tests.integration.orders_admin_fixtures import api_as

pytestmark = pytest.mark.django_db

TWO_LINES = {"MUG": 2, "CAP": 1}


@pytest.fixture
def owner():
    return api_as("owner")


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    return body


def ship(api, number, lines=None, **fields):
    body = {"carrier": "DHL", "tracking_number": "JD0001", **fields}
    if lines is not None:
        body["lines"] = [{"sku": sku, "quantity": quantity} for sku, quantity in lines.items()]
    return api.post(f"/orders/{number}/shipments", body)


def test_given_a_paid_order_when_lines_ship_then_201_and_the_order_is_partly_fulfilled(
    fake_gateway, owner
):
    order = paid_order(fake_gateway, items=TWO_LINES)

    response = ship(owner, order.number, {"MUG": 1})

    assert response.status_code == 201, response.content
    shipment = response.json()
    assert shipment["status"] == "shipped" and shipment["shipped_at"]
    assert (shipment["carrier"], shipment["tracking_number"]) == ("DHL", "JD0001")
    assert [(line["sku"], line["quantity"]) for line in shipment["lines"]] == [("MUG", 1)]
    detail = owner.get(f"/orders/{order.number}").json()
    assert detail["fulfillment_status"] == "partially_fulfilled"
    assert {line["sku"]: line["shipped_quantity"] for line in detail["lines"]} == {
        "MUG": 1,
        "CAP": 0,
    }
    assert all(line["returned_quantity"] == 0 for line in detail["lines"])
    assert [s["id"] for s in detail["shipments"]] == [shipment["id"]]
    assert "ship" in detail["available_actions"] and "cancel" not in detail["available_actions"]
    entry = AuditEntry.objects.get(action="order.shipped")
    assert entry.after == {"shipment": shipment["id"], "lines": {"MUG": 1}}
    assert entry.details["tracking_number"] == "JD0001"


def test_given_no_lines_then_everything_left_ships_and_the_paid_order_closes(fake_gateway, owner):
    order = paid_order(fake_gateway, items=TWO_LINES)
    ship(owner, order.number, {"MUG": 1})

    response = ship(owner, order.number, tracking_number="JD0002")

    assert response.status_code == 201, response.content
    assert sorted((x["sku"], x["quantity"]) for x in response.json()["lines"]) == [
        ("CAP", 1),
        ("MUG", 1),
    ]
    detail = owner.get(f"/orders/{order.number}").json()
    assert detail["fulfillment_status"] == "fulfilled"
    assert detail["status"] == "closed"  # paid, everything shipped, nothing open
    assert "ship" not in detail["available_actions"]
    assert AuditEntry.objects.filter(action="order.closed").count() == 1
    problem(ship(owner, order.number), 422, "quantity_exceeds_unshipped")


def test_given_an_authorised_order_when_shipped_then_it_stays_open_until_captured(
    fake_gateway, owner
):
    order = authorised_order(fake_gateway)

    assert ship(owner, order.number).status_code == 201

    detail = owner.get(f"/orders/{order.number}").json()
    assert (detail["fulfillment_status"], detail["status"]) == ("fulfilled", "processing")


def test_given_a_refund_pending_when_everything_ships_then_not_closed_yet(fake_gateway, owner):
    order = paid_order(fake_gateway)
    fake_gateway.lose_next_response.add("create_refund")  # its outcome stays unknown
    requested_refund(order, actor=staff("manager"), amount="1.00")

    assert ship(owner, order.number).status_code == 201

    assert owner.get(f"/orders/{order.number}").json()["status"] == "processing"


def test_given_units_refunded_before_shipping_then_they_are_not_shipped(fake_gateway, owner):
    order = paid_order(fake_gateway, items={"MUG": 3})
    mug = order.lines.get()
    requested_refund(order, actor=staff("manager"), lines=[LineRequest(line_id=mug.pk, quantity=1)])

    response = ship(owner, order.number)

    assert [(x["sku"], x["quantity"]) for x in response.json()["lines"]] == [("MUG", 2)]
    problem(ship(owner, order.number, {"MUG": 1}), 422, "quantity_exceeds_unshipped")


def test_given_unpaid_then_409_order_not_paid_and_nothing_changes(fake_gateway, owner):
    order = new_order(fake_gateway)

    problem(ship(owner, order.number), 409, "order_not_paid")

    assert not Shipment.objects.exists()
    assert "ship" not in owner.get(f"/orders/{order.number}").json()["available_actions"]


def test_given_cancelled_then_409_order_cancelled(fake_gateway, owner):
    order = new_order(fake_gateway)
    owner.post(f"/orders/{order.number}/cancel", {"reason": "customer asked"})

    problem(ship(owner, order.number), 409, "order_cancelled")


@pytest.mark.parametrize(
    ("lines", "status", "code"),
    [
        ({"MUG": 3}, 422, "quantity_exceeds_unshipped"),
        ({"NOPE": 1}, 422, "invalid_shipment_lines"),
        ({"MUG": 0}, 422, "invalid_shipment_lines"),
    ],
)
def test_given_bad_lines_then_refused_and_nothing_changes(fake_gateway, owner, lines, status, code):
    order = paid_order(fake_gateway)

    problem(ship(owner, order.number, lines), status, code)

    assert not Shipment.objects.exists() and not AuditEntry.objects.filter(action="order.shipped")


def test_given_a_sku_listed_twice_or_a_long_tracking_number_then_422(fake_gateway, owner):
    order = paid_order(fake_gateway)
    body = {"lines": [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 1}]}
    problem(owner.post(f"/orders/{order.number}/shipments", body), 422, "invalid_shipment_lines")
    problem(ship(owner, order.number, tracking_number="9" * 101), 422, "invalid_input")
    problem(
        owner.post(f"/orders/{order.number}/shipments", {"lines": "x"}), 422, "validation_error"
    )
    assert not Shipment.objects.exists()


def test_given_a_shipment_then_the_order_cannot_be_cancelled(fake_gateway, owner):
    order = authorised_order(fake_gateway)  # cancellable (void) until it ships
    ship(owner, order.number, carrier="UPS")

    problem(
        owner.post(f"/orders/{order.number}/cancel", {"reason": "x"}), 409, "order_has_shipments"
    )

    detail = owner.get(f"/orders/{order.number}").json()
    assert detail["cancel_blocked_reason"] == "it has shipped: its goods come back through a return"
    assert detail["payment_status"] == "authorized"


def test_given_a_shipment_when_delivered_then_200_delivered_and_again_no_change(
    fake_gateway, owner
):
    order = paid_order(fake_gateway)
    shipment = ship(owner, order.number).json()
    path = f"/orders/{order.number}/shipments/{shipment['id']}/deliver"

    first = owner.post(path)
    again = owner.post(path)

    assert first.status_code == 200 and first.json()["status"] == "delivered"
    assert again.json()["delivered_at"] == first.json()["delivered_at"]
    assert AuditEntry.objects.filter(action="order.shipment.delivered").count() == 1
    other = paid_order(fake_gateway, items={"CAP": 1})
    problem(
        owner.post(f"/orders/{other.number}/shipments/{shipment['id']}/deliver"),
        404,
        "shipment_not_found",
    )


@pytest.mark.parametrize(
    ("role", "allowed"), [("manager", True), ("support", True), ("viewer", False)]
)
def test_given_a_role_then_shipping_follows_orders_fulfil(fake_gateway, role, allowed):
    order = paid_order(fake_gateway)
    api = api_as(role)

    response = ship(api, order.number)

    assert response.status_code == (201 if allowed else 403), response.content
    assert Shipment.objects.count() == (1 if allowed else 0)
    assert ("ship" in api.get(f"/orders/{order.number}").json()["available_actions"]) is False


def test_given_an_idempotency_key_when_the_shipment_is_retried_then_it_ships_once(fake_gateway):
    order = paid_order(fake_gateway, items={"MUG": 3})
    api = api_as("manager")
    headers = {"HTTP_IDEMPOTENCY_KEY": "ship-once-1"}
    body = {"lines": [{"sku": "MUG", "quantity": 1}]}

    first = api.post(f"/orders/{order.number}/shipments", body, **headers)
    again = api.post(f"/orders/{order.number}/shipments", body, **headers)

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert Shipment.objects.count() == 1
