"""Returns (issue 11): ask for shipped units back, receive them (with restock), refund the
received units through the refund engine (exactly once), reject; the returns queue."""

from __future__ import annotations

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund
from shopkeeper.returns.models import Return
from tests.factories import paid_order
from tests.integration.orders_admin_fixtures import api_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager():
    return api_as("manager")


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    return body


def shipped_order(fake_gateway, api, items=None, ship=None):
    order = paid_order(fake_gateway, items=items or {"MUG": 2, "CAP": 1}, price="10.00")
    body = {"carrier": "DHL", "tracking_number": "T1"}
    if ship is not None:
        body["lines"] = [{"sku": sku, "quantity": q} for sku, q in ship.items()]
    assert api.post(f"/orders/{order.number}/shipments", body).status_code == 201
    return order


def ask(api, number, lines, note=""):
    body = {"lines": [{"sku": s, "quantity": q, "reason": r} for s, q, r in lines], "note": note}
    return api.post(f"/orders/{number}/returns", body)


def test_given_shipped_units_when_a_return_is_asked_then_201_requested_by_staff(
    fake_gateway, manager
):
    order = shipped_order(fake_gateway, manager)

    response = ask(manager, order.number, [("MUG", 1, "damaged")], note="box crushed")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["source"], body["note"]) == ("requested", "staff", "box crushed")
    assert [(x["sku"], x["quantity"], x["reason"]) for x in body["lines"]] == [
        ("MUG", 1, "damaged")
    ]
    assert AuditEntry.objects.filter(action="order.return.requested").count() == 1


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([("MUG", 3, "damaged")], "quantity_exceeds_returnable"),
        ([("CAP", 1, "damaged")], "quantity_exceeds_returnable"),  # not shipped
        ([("MUG", 1, "meh")], "invalid_return_reason"),
        ([("NOPE", 1, "other")], "invalid_return_lines"),
        ([], "invalid_return_lines"),
    ],
)
def test_given_more_than_returnable_or_bad_lines_then_422_and_nothing_changes(
    fake_gateway, manager, lines, code
):
    order = shipped_order(fake_gateway, manager, ship={"MUG": 2})

    problem(ask(manager, order.number, lines), 422, code)

    assert not Return.objects.exists()


def test_given_units_in_another_return_then_they_cannot_be_returned_again_unless_rejected(
    fake_gateway, manager
):
    order = shipped_order(fake_gateway, manager, items={"MUG": 2})
    first = ask(manager, order.number, [("MUG", 2, "no_longer_needed")]).json()
    problem(ask(manager, order.number, [("MUG", 1, "other")]), 422, "quantity_exceeds_returnable")

    assert (
        manager.post(f"/returns/{first['id']}/reject", {"note": "outside 30 days"}).json()["status"]
        == "rejected"
    )

    assert ask(manager, order.number, [("MUG", 1, "other")]).status_code == 201


def test_given_a_return_received_with_restock_then_stock_comes_back_and_refund_is_for_what_came(
    fake_gateway, manager
):
    order = shipped_order(fake_gateway, manager, items={"MUG": 2})
    stock_before = Product.objects.get(sku="MUG").stock
    asked = ask(manager, order.number, [("MUG", 2, "damaged")]).json()

    received = manager.post(
        f"/returns/{asked['id']}/receive",
        {"lines": [{"sku": "MUG", "quantity": 1, "restock": True}]},
    )
    assert received.status_code == 200, received.content
    assert received.json()["status"] == "received"
    assert received.json()["lines"][0]["received_quantity"] == 1
    assert Product.objects.get(sku="MUG").stock == stock_before + 1
    detail = manager.get(f"/orders/{order.number}").json()
    assert detail["lines"][0]["returned_quantity"] == 1

    response = manager.post(
        f"/returns/{asked['id']}/refund", {}, HTTP_IDEMPOTENCY_KEY="return-refund-1"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["refund"]["status"], body["refund"]["amount"]) == ("succeeded", "10.00")
    assert body["return"]["status"] == "refunded" and body["return"]["refund_status"] == "succeeded"
    assert Product.objects.get(sku="MUG").stock == stock_before + 1  # not restocked twice
    again = manager.post(
        f"/returns/{asked['id']}/refund", {}, HTTP_IDEMPOTENCY_KEY="return-refund-1"
    )
    assert again.json()["refund"]["id"] == body["refund"]["id"]
    assert Refund.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    problem(manager.post(f"/returns/{asked['id']}/refund", {}), 409, "return_refund_exists")


def test_given_a_return_refunded_with_everything_else_settled_then_the_order_closes(
    fake_gateway, manager
):
    order = shipped_order(fake_gateway, manager, items={"MUG": 1})
    order.refresh_from_db()
    assert order.status == "closed"  # shipped in full and paid: closed already
    # A closed order still takes a return of what it shipped.
    asked = ask(manager, order.number, [("MUG", 1, "wrong_item")]).json()
    manager.post(f"/returns/{asked['id']}/receive")
    refund = manager.post(f"/returns/{asked['id']}/refund", {"include_shipping": True}).json()

    assert refund["refund"]["amount"] == "15.00"  # 10.00 + the 5.00 shipping fee
    order.refresh_from_db()
    assert order.payment_status == "refunded"


def test_given_nothing_received_then_no_refund(fake_gateway, manager):
    order = shipped_order(fake_gateway, manager, items={"MUG": 1})
    asked = ask(manager, order.number, [("MUG", 1, "other")]).json()
    manager.post(f"/returns/{asked['id']}/receive", {"lines": [{"sku": "MUG", "quantity": 0}]})

    problem(manager.post(f"/returns/{asked['id']}/refund", {}), 409, "return_nothing_received")
    problem(
        manager.post(f"/returns/{asked['id']}/receive", {"lines": [{"sku": "MUG", "quantity": 1}]}),
        409,
        "return_not_requested",
    )
    assert not Refund.objects.exists()


def test_given_received_more_than_asked_then_422(fake_gateway, manager):
    order = shipped_order(fake_gateway, manager, items={"MUG": 2})
    asked = ask(manager, order.number, [("MUG", 1, "other")]).json()

    problem(
        manager.post(f"/returns/{asked['id']}/receive", {"lines": [{"sku": "MUG", "quantity": 2}]}),
        422,
        "received_exceeds_requested",
    )
    assert Return.objects.get().status == "requested"


def test_the_returns_queue_pages_newest_first_and_filters_by_status(fake_gateway, manager):
    order = shipped_order(fake_gateway, manager, items={"MUG": 3})
    ids = [ask(manager, order.number, [("MUG", 1, "other")]).json()["id"] for _ in range(3)]
    manager.post(f"/returns/{ids[0]}/receive")

    first = manager.get("/returns", limit=2).json()
    second = manager.get("/returns", limit=2, cursor=first["next_cursor"]).json()

    assert [r["id"] for r in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert [r["id"] for r in manager.get("/returns", status="received").json()["items"]] == ids[:1]
    assert manager.get(f"/returns/{ids[1]}").json()["status"] == "requested"
    problem(manager.get("/returns", cursor="nope"), 422, "invalid_cursor")
    problem(manager.get("/returns/999999"), 404, "return_not_found")


def test_given_a_viewer_then_returns_are_read_only(fake_gateway, manager):
    order = shipped_order(fake_gateway, manager, items={"MUG": 1})
    viewer = api_as("viewer")
    assert ask(viewer, order.number, [("MUG", 1, "other")]).status_code == 403
    asked = ask(manager, order.number, [("MUG", 1, "other")]).json()
    assert viewer.get(f"/returns/{asked['id']}").status_code == 200
    assert viewer.post(f"/returns/{asked['id']}/receive").status_code == 403
