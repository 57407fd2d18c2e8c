"""The admin orders API: list with keyset pagination, detail with actions, timeline, cancel,
capture, and problem+json errors with the issue's codes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.orders.models import Order
from tests.factories import authorised_order, new_order, paid_order
from tests.integration.orders_admin_fixtures import api_as, intent_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return api_as("owner")


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code and body["status"] == status
    return body


# --- list ---------------------------------------------------------------------------------


def many_orders(fake_gateway, settings, count: int, *, same_instant: bool = False) -> list[str]:
    numbers = [
        new_order(
            fake_gateway, price="10.50", email=f"buyer{i}@example.com", items={"MUG": 1}
        ).number
        for i in range(count)
    ]
    base = timezone.now() - timedelta(days=1)
    for i, number in enumerate(numbers):
        at = base if same_instant else base + timedelta(minutes=i)
        Order.objects.filter(number=number).update(created_at=at)
    # newest first: by created_at, then by id
    return [o.number for o in Order.objects.order_by("-created_at", "-id")]


@pytest.mark.parametrize("same_instant", [False, True])
def test_given_orders_when_paging_then_every_order_once_newest_first(
    fake_gateway, settings, owner, same_instant
):
    expected = many_orders(fake_gateway, settings, 7, same_instant=same_instant)

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = owner.get("/orders", **params).json()
        seen += [item["number"] for item in body["items"]]
        pages, cursor = pages + 1, body["next_cursor"]
        if cursor is None:
            break

    assert seen == expected and pages == 3


def test_given_a_new_order_between_pages_then_the_next_page_does_not_shift(
    fake_gateway, settings, owner
):
    expected = many_orders(fake_gateway, settings, 4)
    first = owner.get("/orders", limit=2).json()
    new_order(fake_gateway, price="10.50", items={"MUG": 1})  # newer than everything

    second = owner.get("/orders", limit=2, cursor=first["next_cursor"]).json()

    assert [i["number"] for i in second["items"]] == expected[2:4]


def test_list_item_shape(fake_gateway, settings, owner):
    order = paid_order(fake_gateway, price="10.50")
    (item,) = owner.get("/orders").json()["items"]
    assert item["number"] == order.number
    assert (item["status"], item["payment_status"]) == ("processing", "paid")
    assert (item["grand_total"], item["grand_total_minor"], item["currency"]) == (
        "26.00",
        2600,
        "USD",
    )
    assert item["email"] == "ada@example.com" and item["created_at"]


def test_given_filters_and_search_then_only_matching_orders(fake_gateway, settings, owner):
    paid = paid_order(fake_gateway, price="10.50", email="paid@example.com")
    unpaid = new_order(fake_gateway, price="10.50", email="Someone.Else@Example.com")

    def numbers(**params):
        return [i["number"] for i in owner.get("/orders", **params).json()["items"]]

    assert numbers(payment_status="paid") == [paid.number]
    assert numbers(status="pending") == [unpaid.number]
    assert numbers(status="processing", payment_status="pending") == []
    assert numbers(q="someone.else") == [unpaid.number]
    assert numbers(q=paid.number.lower()[-5:]) == [paid.number]
    assert numbers(q="nobody") == []


@pytest.mark.parametrize(
    "params",
    [{"status": "lost"}, {"payment_status": "maybe"}, {"limit": 0}, {"limit": 101}],
)
def test_given_invalid_filters_then_422(owner, params):
    problem(owner.get("/orders", **params), 422, "validation_error")


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJ4IiwgMV0", "eyJhIjogMX0"])
def test_given_a_forged_cursor_then_422_invalid_cursor(owner, cursor):
    problem(owner.get("/orders", cursor=cursor), 422, "invalid_cursor")


# --- detail -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "capture", "expected"),
    [
        ("owner", "manual", ["capture", "cancel", "ship"]),
        ("manager", "manual", ["capture", "cancel", "ship"]),
        ("support", "manual", ["cancel", "ship"]),
        ("viewer", "manual", []),
        ("owner", "automatic", ["refund", "ship"]),
        ("support", "automatic", ["refund", "ship"]),
        ("viewer", "automatic", []),
    ],
)
def test_given_a_role_then_detail_lists_the_actions_it_may_take(
    fake_gateway, settings, role, capture, expected
):
    order = paid_order(fake_gateway, price="10.50", capture=capture)
    body = api_as(role).get(f"/orders/{order.number}").json()
    assert body["available_actions"] == expected


def test_given_paid_order_then_detail_explains_why_it_cannot_be_cancelled(fake_gateway, settings):
    order = paid_order(fake_gateway, price="10.50")
    body = api_as("support").get(f"/orders/{order.number}").json()
    assert body["cancel_blocked_reason"] == (
        "a paid order must be refunded in full before it can be cancelled"
    )
    assert api_as("viewer").get(f"/orders/{order.number}").json()["cancel_blocked_reason"] is None


def test_given_unknown_order_then_404_problem(owner):
    problem(owner.get("/orders/SK-NOPE"), 404, "order_not_found")
    problem(owner.get("/orders/SK-NOPE/events"), 404, "order_not_found")
    problem(owner.post("/orders/SK-NOPE/cancel", {"reason": "x"}), 404, "order_not_found")
    problem(owner.post("/orders/SK-NOPE/capture", {}), 404, "order_not_found")


# --- cancel -------------------------------------------------------------------------------


def test_given_unpaid_order_when_cancelled_via_api_then_200_with_the_order(
    fake_gateway, settings, owner
):
    order = new_order(fake_gateway, price="10.50")

    response = owner.post(f"/orders/{order.number}/cancel", {"reason": "customer asked"})

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["payment_status"]) == ("cancelled", "voided")
    assert body["cancel_reason"] == "customer asked" and body["cancelled_at"]
    assert body["available_actions"] == []
    assert body["cancel_blocked_reason"] == "this order is already cancelled"


def test_given_paid_order_when_cancelled_via_api_then_409_order_paid_refund_first(
    fake_gateway, settings, owner
):
    order = paid_order(fake_gateway, price="10.50")
    body = problem(
        owner.post(f"/orders/{order.number}/cancel", {"reason": "x"}),
        409,
        "order_paid_refund_first",
    )
    assert body["title"] == "A paid order must be refunded in full before it can be cancelled"


def test_given_no_reason_when_cancelled_via_api_then_422(fake_gateway, settings, owner):
    order = new_order(fake_gateway, price="10.50")
    problem(owner.post(f"/orders/{order.number}/cancel", {"reason": "  "}), 422, "reason_required")
    problem(owner.post(f"/orders/{order.number}/cancel", {}), 422, "validation_error")
    assert Order.objects.get(pk=order.pk).status == "pending"


def test_given_stripe_unknown_when_cancelled_via_api_then_503_and_still_pending(
    fake_gateway, settings, owner
):
    order = new_order(fake_gateway, price="10.50")
    fake_gateway.fail_next["cancel_payment_intent"] = [PaymentOutcomeUnknown("timeout")]

    problem(
        owner.post(f"/orders/{order.number}/cancel", {"reason": "x"}),
        503,
        "payment_outcome_unknown",
    )
    assert Order.objects.get(pk=order.pk).status == "pending"


# --- capture ------------------------------------------------------------------------------


def test_given_authorised_order_when_captured_in_part_via_api_then_200_with_amounts(
    fake_gateway, settings, owner
):
    order = authorised_order(fake_gateway, price="10.50")

    response = owner.post(f"/orders/{order.number}/capture", {"amount": "20.00"})

    assert response.status_code == 200
    body = response.json()
    assert body["payment_status"] == "paid"
    assert (body["captured"], body["captured_minor"], body["refundable"]) == (
        "20.00",
        2000,
        "20.00",
    )


def test_given_capture_errors_via_api_then_issue_codes(fake_gateway, settings, owner):
    order = authorised_order(fake_gateway, price="10.50")
    path = f"/orders/{order.number}/capture"

    problem(owner.post(path, {"amount": "26.01"}), 409, "capture_exceeds_authorized")
    problem(owner.post(path, {"amount": "1.001"}), 422, "invalid_amount")
    problem(owner.post(path, {"amount": "0"}), 422, "invalid_amount")
    problem(owner.post(path, {"amount": 10}), 422, "validation_error")  # strings only
    assert owner.post(path, {}).status_code == 200
    problem(owner.post(path, {}), 409, "order_not_capturable")


# --- timeline -----------------------------------------------------------------------------


def test_given_an_order_with_history_then_events_merge_audit_and_ledger_in_time_order(
    fake_gateway, settings, owner
):
    order = authorised_order(fake_gateway, price="10.50")
    owner.post(f"/orders/{order.number}/capture", {"amount": "20.00"})

    events = owner.get(f"/orders/{order.number}/events").json()

    assert [e["type"] for e in events] == [
        "order.placed",
        "payment.started",
        "ledger.authorization",
        "payment.authorized",
        "ledger.capture",
        "ledger.release",
        "order.captured",
    ]
    times = [e["at"] for e in events]
    assert times == sorted(times)
    capture = events[4]
    assert (capture["source"], capture["amount"], capture["amount_minor"]) == (
        "ledger",
        "20.00",
        2000,
    )
    assert capture["details"]["payment_intent"] == intent_id(order)
    assert capture["details"]["external_id"] == f"{intent_id(order)}:capture"
    captured = events[-1]
    assert (captured["source"], captured["actor"]) == ("audit", "owner@shop.example")
    assert captured["after"] == {"status": "processing", "payment_status": "paid"}


def test_events_of_one_order_never_include_another_orders(fake_gateway, settings, owner):
    mine = paid_order(fake_gateway, price="10.50")
    paid_order(fake_gateway, price="10.50")
    events = owner.get(f"/orders/{mine.number}/events").json()
    assert len([e for e in events if e["type"] == "order.placed"]) == 1
    assert len([e for e in events if e["type"] == "ledger.capture"]) == 1


# --- OpenAPI ------------------------------------------------------------------------------


def test_openapi_document_describes_every_orders_endpoint_and_resolves(client: Client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    doc = json.loads(response.content)
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert set(paths["/api/admin/orders"]) == {"get"}
    assert set(paths["/api/admin/orders/{number}"]) == {"get"}
    assert set(paths["/api/admin/orders/{number}/events"]) == {"get"}
    assert set(paths["/api/admin/orders/{number}/cancel"]) == {"post"}
    assert set(paths["/api/admin/orders/{number}/capture"]) == {"post"}
    detail = doc["components"]["schemas"]["OrderOut"]["properties"]
    assert {"available_actions", "cancel_blocked_reason"} <= set(detail)

    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation.get("responses"), (method, path)
