"""The refund API: status codes, problem+json codes, permissions, approval, the order's view."""

from __future__ import annotations

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.errors import PaymentDeclined
from shopkeeper.orders.models import OrderLine
from tests.factories import authorised_order, paid_order, staff, token_for
from tests.integration.refund_fixtures import Api, refund_count, refunded_minor

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_role():
    def api(role: str, email: str | None = None) -> Api:
        return Api(token_for(staff(role, email)))

    return api


def test_given_manager_when_partial_refund_posted_then_201_with_refund_and_order(
    fake_gateway, as_role
):
    order = paid_order(fake_gateway)

    response = as_role("manager").refund(
        order.number, {"amount": "7.50", "reason": "requested_by_customer", "note": "broken"}
    )

    assert response.status_code == 201, response.content
    body = response.json()
    refund = body["refund"]
    assert refund["status"] == "succeeded" and refund["amount"] == "7.50"
    assert refund["amount_minor"] == 750 and refund["currency"] == "USD"
    assert refund["reason"] == "requested_by_customer" and refund["note"] == "broken"
    assert refund["stripe_refund_id"].startswith("re_") and refund["failure_message"] == ""
    assert refund["requested_by"] == "manager@shop.example"
    assert refund["order_number"] == order.number
    assert body["order"]["payment_status"] == "partially_refunded"
    assert body["order"]["refunded"] == "7.50" and body["order"]["refundable"] == "17.50"
    assert [r["id"] for r in body["order"]["refunds"]] == [refund["id"]]


def test_given_lines_posted_then_refund_lists_them_and_order_line_restocked(fake_gateway, as_role):
    order = paid_order(fake_gateway)
    line = OrderLine.objects.get(order=order)

    response = as_role("owner").refund(
        order.number,
        {
            "lines": [{"line_id": line.pk, "quantity": 2, "restock": True}],
            "include_shipping": True,
            "reason": "other",
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["refund"]["amount"] == "25.00" and body["refund"]["include_shipping"] is True
    assert body["refund"]["lines"] == [
        {
            "line_id": line.pk,
            "sku": "MUG",
            "name": "Mug",
            "quantity": 2,
            "restock": True,
            "amount": "20.00",
            "amount_minor": 2000,
        }
    ]
    assert body["order"]["payment_status"] == "refunded"
    assert body["order"]["lines"][0]["restocked_quantity"] == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": "25.01", "reason": "other"}, 409, "refund_exceeds_refundable"),
        ({"amount": "0", "reason": "other"}, 422, "invalid_amount"),
        ({"amount": "-1.00", "reason": "other"}, 422, "invalid_amount"),
        ({"amount": "1.001", "reason": "other"}, 422, "invalid_amount"),
        ({"amount": "ten", "reason": "other"}, 422, "invalid_amount"),
        ({"amount": " 1.00", "reason": "other"}, 422, "invalid_amount"),
        ({"amount": "1.00\u00a0", "reason": "other"}, 422, "invalid_amount"),
        ({"amount": 10.5, "reason": "other"}, 422, "invalid_amount"),
        ({"amount": "1.00", "reason": "whim"}, 422, "invalid_reason"),
        ({"amount": "1.00"}, 422, "validation_error"),
        (
            {"lines": [{"line_id": 0, "quantity": 1}], "reason": "other"},
            422,
            "invalid_refund_lines",
        ),
    ],
)
def test_given_bad_request_when_posted_then_problem_and_nothing_changes(
    fake_gateway, as_role, body, status, code
):
    order = paid_order(fake_gateway)
    calls = list(fake_gateway.calls)

    response = as_role("manager").refund(order.number, body)

    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert refund_count(order) == 0 and fake_gateway.calls == calls


def test_given_authorised_order_when_refund_posted_then_409_order_not_captured(
    fake_gateway, as_role
):
    order = authorised_order(fake_gateway, items={"MUG": 1}, email="a@example.com")

    response = as_role("manager").refund(order.number, {"reason": "other"})

    assert response.status_code == 409 and response.json()["code"] == "order_not_captured"


def test_given_unknown_order_when_refund_posted_then_404(as_role):
    response = as_role("manager").refund("SK-NOPE", {"amount": "1.00", "reason": "other"})
    assert response.status_code == 404 and response.json()["code"] == "order_not_found"


@pytest.mark.parametrize("role", ["viewer"])
def test_given_role_without_refund_permission_when_posted_then_403_audited(
    fake_gateway, as_role, role
):
    order = paid_order(fake_gateway)

    response = as_role(role).refund(order.number, {"amount": "1.00", "reason": "other"})

    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert refund_count(order) == 0
    assert AuditEntry.objects.filter(action="permission.denied", target_id="orders.refund").exists()


def test_given_no_token_when_refund_posted_then_401(fake_gateway):
    order = paid_order(fake_gateway)
    response = Api("shk_not_a_token").refund(order.number, {"amount": "1.00", "reason": "other"})
    assert response.status_code == 401
    assert refund_count(order) == 0


def test_given_stripe_declines_when_posted_then_201_with_failed_refund_and_message(
    fake_gateway, as_role
):
    order = paid_order(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [PaymentDeclined("The card issuer said no")]

    response = as_role("manager").refund(order.number, {"amount": "5.00", "reason": "other"})

    assert response.status_code == 201
    refund = response.json()["refund"]
    assert refund["status"] == "failed" and refund["failure_message"] == "The card issuer said no"
    assert response.json()["order"]["refundable"] == "25.00"


# --- approval -------------------------------------------------------------------------------


def test_given_support_above_limit_when_posted_then_awaiting_approval_and_not_sent(
    fake_gateway, as_role, settings
):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"USD": "10.00"}}
    order = paid_order(fake_gateway)

    response = as_role("support").refund(order.number, {"amount": "10.01", "reason": "other"})

    assert response.status_code == 201
    body = response.json()
    assert body["refund"]["status"] == "awaiting_approval"
    assert body["order"]["refundable"] == "14.99"  # held back while it waits
    assert not any(op == "create_refund" for op, _ in fake_gateway.calls)


def test_given_support_within_limit_when_posted_then_refunded_at_once(
    fake_gateway, as_role, settings
):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"USD": "10.00"}}
    order = paid_order(fake_gateway)

    response = as_role("support").refund(order.number, {"amount": "10.00", "reason": "other"})

    assert response.json()["refund"]["status"] == "succeeded"


def test_given_support_in_currency_without_limit_then_every_refund_awaits_approval(
    fake_gateway, as_role, settings
):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"EUR": "100.00"}}
    order = paid_order(fake_gateway)

    response = as_role("support").refund(order.number, {"amount": "0.01", "reason": "other"})

    assert response.json()["refund"]["status"] == "awaiting_approval"


def awaiting(fake_gateway, as_role, settings, amount: str = "20.00"):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"USD": "10.00"}}
    order = paid_order(fake_gateway)
    response = as_role("support").refund(order.number, {"amount": amount, "reason": "other"})
    return order, response.json()["refund"]["id"]


def test_given_awaiting_refund_when_manager_approves_then_sent_and_succeeded(
    fake_gateway, as_role, settings
):
    order, refund_id = awaiting(fake_gateway, as_role, settings)

    response = as_role("manager").post(
        f"/api/admin/refunds/{refund_id}/approve", {"note": "ok, customer is right"}
    )

    assert response.status_code == 200, response.content
    refund = response.json()["refund"]
    assert refund["status"] == "succeeded" and refund["decided_by"] == "manager@shop.example"
    assert refund["decision_note"] == "ok, customer is right"
    assert refunded_minor(order) == 2000
    actions = list(
        AuditEntry.objects.filter(target_id=order.number, action__startswith="order.refund")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "order.refund.requested",
        "order.refund.approved",
        "order.refund.succeeded",
    ]


def test_given_awaiting_refund_when_approved_without_body_then_ok(fake_gateway, as_role, settings):
    _, refund_id = awaiting(fake_gateway, as_role, settings)
    api = as_role("owner")
    response = api.client.post(
        f"/api/admin/refunds/{refund_id}/approve",
        "",
        content_type="application/json",
        **api.headers,
    )
    assert response.status_code == 200, response.content


def test_given_awaiting_refund_when_requester_approves_own_then_403_approver_is_requester(
    fake_gateway, as_role, settings
):
    settings.SHOPKEEPER_REFUND_LIMITS = {"manager": {"USD": "10.00"}}
    order = paid_order(fake_gateway)
    manager = as_role("manager")
    refund_id = manager.refund(order.number, {"amount": "20.00", "reason": "other"}).json()[
        "refund"
    ]["id"]

    response = manager.post(f"/api/admin/refunds/{refund_id}/approve")

    assert response.status_code == 403 and response.json()["code"] == "approver_is_requester"
    assert refunded_minor(order) == 0


def test_given_awaiting_refund_when_support_approves_then_403_permission_denied(
    fake_gateway, as_role, settings
):
    _, refund_id = awaiting(fake_gateway, as_role, settings)
    response = as_role("support", "other-support@shop.example").post(
        f"/api/admin/refunds/{refund_id}/approve"
    )
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_given_awaiting_refund_when_rejected_then_released_and_cannot_be_approved(
    fake_gateway, as_role, settings
):
    order, refund_id = awaiting(fake_gateway, as_role, settings)
    manager = as_role("manager")

    rejected = manager.post(f"/api/admin/refunds/{refund_id}/reject", {"note": "no receipt"})
    approved = manager.post(f"/api/admin/refunds/{refund_id}/approve")

    assert rejected.status_code == 200
    assert rejected.json()["refund"]["status"] == "rejected"
    assert rejected.json()["order"]["refundable"] == "25.00"
    assert approved.status_code == 409
    assert approved.json()["code"] == "refund_not_awaiting_approval"
    assert refunded_minor(order) == 0
    assert AuditEntry.objects.filter(action="order.refund.rejected").count() == 1


def test_given_money_refunded_elsewhere_while_waiting_when_approved_then_409_still_awaiting(
    fake_gateway, as_role, settings
):
    from shopkeeper.payments.gateway import RefundSnapshot
    from shopkeeper.refunds.models import Refund
    from shopkeeper.refunds.settlement import settle_refund

    order, refund_id = awaiting(fake_gateway, as_role, settings)  # 20.00 of 25.00 held back
    settle_refund(  # 10.00 refunded in the Stripe dashboard meanwhile
        RefundSnapshot(
            id="re_dashboard",
            status="succeeded",
            amount=1000,
            currency="USD",
            payment_intent_id=order.payments.get().intent_id,
        ),
        source="webhook",
    )

    response = as_role("manager").post(f"/api/admin/refunds/{refund_id}/approve")

    assert response.status_code == 409 and response.json()["code"] == "refund_exceeds_refundable"
    assert Refund.objects.get(pk=refund_id).status == "awaiting_approval"
    assert refunded_minor(order) == 1000


def test_given_unknown_refund_when_approved_then_404(as_role):
    response = as_role("manager").post("/api/admin/refunds/999999/approve")
    assert response.status_code == 404 and response.json()["code"] == "refund_not_found"


def test_approval_queue_lists_refunds_awaiting_approval(fake_gateway, as_role, settings):
    order, refund_id = awaiting(fake_gateway, as_role, settings)

    response = as_role("viewer").get("/api/admin/refunds?status=awaiting_approval")

    assert response.status_code == 200
    assert [(r["id"], r["order_number"]) for r in response.json()] == [(refund_id, order.number)]
    one = as_role("viewer", "v2@shop.example").get(f"/api/admin/refunds/{refund_id}")
    assert one.json()["refund"]["status"] == "awaiting_approval"


def test_refund_endpoints_are_in_the_openapi_schema(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert "/api/admin/orders/{number}/refunds" in paths
    assert "/api/admin/refunds/{refund_id}/approve" in paths
    assert "/api/admin/refunds/{refund_id}/reject" in paths
