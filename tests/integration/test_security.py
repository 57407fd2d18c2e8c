"""Access and secrets: the RBAC matrix over every admin endpoint, 401/403 answers (403s are
audited), CSRF on cookie sessions but not on bearer tokens, and the Stripe secret key never in
a response or a log record."""

from __future__ import annotations

import logging
import re

import pytest
from django.test import Client

from shopkeeper.accounts.models import ApiToken
from shopkeeper.accounts.permissions import ROLE_PERMISSIONS, Role
from shopkeeper.audit.models import AuditEntry
from shopkeeper.orders.models import Order
from shopkeeper.payments.provider import use_gateway
from shopkeeper.payments.stripe.client import StripeGateway
from tests.factories import authorised_order, new_order, staff, token_for
from tests.integration.admin_operations import BODIES, OPERATIONS, concrete
from tests.integration.orders_admin_fixtures import ROLES, Api

pytestmark = pytest.mark.django_db


def test_every_admin_endpoint_goes_through_requires():
    assert len(OPERATIONS) >= 12  # orders 5, products 2, refunds 5
    unguarded = [(method, path) for method, path, permission in OPERATIONS if not permission]
    assert unguarded == []


def test_every_state_changing_admin_endpoint_has_a_body_in_the_matrix():
    posts = {path for method, path, _ in OPERATIONS if method != "GET"}
    assert posts <= set(BODIES)


def call(client: Client, method: str, path: str, **headers):
    if method == "GET":
        return client.get(path, **headers)
    template = next(t for t in BODIES if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", t), path))
    return client.post(path, BODIES[template], content_type="application/json", **headers)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "permission"), OPERATIONS)
def test_rbac_matrix(fake_gateway, settings, role, method, path, permission):
    order = authorised_order(fake_gateway, price="10.50")
    user = staff(role)
    allowed = permission in ROLE_PERMISSIONS[Role(role)]

    response = call(
        Client(),
        method,
        concrete(path, order.number),
        HTTP_AUTHORIZATION=f"Bearer {token_for(user)}",
    )

    if allowed:
        assert response.status_code != 403, response.content
        assert response.status_code < 500, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"
        denial = AuditEntry.objects.get(action="permission.denied")
        assert (denial.actor_id, denial.target_id) == (user.pk, permission)
        assert denial.details == {"path": concrete(path, order.number), "method": method}
        unchanged = Order.objects.get(pk=order.pk)
        assert (unchanged.status, unchanged.payment_status) == ("processing", "authorized")


# Bodies that fail validation on every state-changing endpoint: not an object, wrong types.
INVALID_BODIES = ("[1, 2]", '{"amount": [], "reason": 7, "note": {}, "sku": [], "price": {}}')


@pytest.mark.parametrize("body", INVALID_BODIES)
@pytest.mark.parametrize(
    ("method", "path", "permission"), [op for op in OPERATIONS if op[0] != "GET"]
)
def test_given_a_denied_role_posting_an_invalid_body_then_403_before_any_validation(
    fake_gateway, settings, method, path, permission, body
):
    order = authorised_order(fake_gateway, price="10.50")
    viewer = staff("viewer")
    assert permission not in ROLE_PERMISSIONS[Role.VIEWER]

    response = Client().post(
        concrete(path, order.number),
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_for(viewer)}",
    )

    assert response.status_code == 403, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "permission_denied"
    denial = AuditEntry.objects.get(action="permission.denied")
    assert (denial.actor_id, denial.target_id) == (viewer.pk, permission)


@pytest.mark.parametrize(("method", "path", "permission"), OPERATIONS)
def test_given_no_credentials_then_401_problem(fake_gateway, settings, method, path, permission):
    order = new_order(fake_gateway, price="10.50")
    response = call(Client(), method, concrete(path, order.number))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_authenticated"


def test_given_revoked_token_or_inactive_user_then_401():
    user = staff("owner")
    revoked = token_for(user)
    ApiToken.objects.update(revoked_at="2020-01-01T00:00:00Z")
    assert Api(revoked).get("/orders").status_code == 401
    other = staff("manager")
    raw = token_for(other)
    other.is_active = False
    other.save()
    assert Api(raw).get("/orders").status_code == 401
    assert Api("shk_not_a_token").get("/orders").status_code == 401


def test_given_viewer_session_when_cancelling_then_403_and_the_denial_is_audited(
    fake_gateway, settings
):
    order = new_order(fake_gateway, price="10.50")
    viewer = staff("viewer")
    client = Client()
    client.force_login(viewer)
    client.cookies["csrftoken"] = CSRF
    response = client.post(
        f"/api/admin/orders/{order.number}/cancel",
        {"reason": "x"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=CSRF,
        HTTP_USER_AGENT="pytest-agent",
        HTTP_X_REQUEST_ID="req-denied-1",
    )
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    denial = AuditEntry.objects.get(action="permission.denied")
    assert (denial.actor_email, denial.target_id) == ("viewer@shop.example", "orders.cancel")
    assert (denial.user_agent, denial.request_id, denial.ip) == (
        "pytest-agent",
        "req-denied-1",
        "127.0.0.1",
    )
    assert Order.objects.get(pk=order.pk).status == "pending"


# --- CSRF ---------------------------------------------------------------------------------

CSRF = "a" * 32  # a valid unmasked CSRF secret, sent as cookie and header


@pytest.fixture
def support_session():
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff("support"))
    return client


def test_given_cookie_session_without_csrf_token_when_posting_then_403_csrf_failed(
    fake_gateway, settings, support_session
):
    order = new_order(fake_gateway, price="10.50")

    response = support_session.post(
        f"/api/admin/orders/{order.number}/cancel", {"reason": "x"}, content_type="application/json"
    )

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "csrf_failed"
    assert Order.objects.get(pk=order.pk).status == "pending"


def test_given_cookie_session_with_a_wrong_csrf_token_then_403(
    fake_gateway, settings, support_session
):
    order = new_order(fake_gateway, price="10.50")
    support_session.cookies["csrftoken"] = CSRF
    response = support_session.post(
        f"/api/admin/orders/{order.number}/cancel",
        {"reason": "x"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN="b" * 32,
    )
    assert response.status_code == 403 and response.json()["code"] == "csrf_failed"


def test_given_cookie_session_with_csrf_token_when_posting_then_it_works(
    fake_gateway, settings, support_session
):
    order = new_order(fake_gateway, price="10.50")
    support_session.cookies["csrftoken"] = CSRF

    response = support_session.post(
        f"/api/admin/orders/{order.number}/cancel",
        {"reason": "x"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=CSRF,
    )

    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_given_cookie_session_then_reads_need_no_csrf_token(
    fake_gateway, settings, support_session
):
    order = new_order(fake_gateway, price="10.50")
    assert support_session.get(f"/api/admin/orders/{order.number}").status_code == 200


def test_given_bearer_token_then_no_csrf_token_is_needed(fake_gateway, settings):
    order = new_order(fake_gateway, price="10.50")
    client = Client(enforce_csrf_checks=True)  # no cookies at all

    response = client.post(
        f"/api/admin/orders/{order.number}/cancel",
        {"reason": "x"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_for(staff('support'))}",
    )

    assert response.status_code == 200


# --- the Stripe secret key ----------------------------------------------------------------

SECRET = "sk_test_51TopSecretShopkeeperKeyNeverShownAnywhere0042"


def test_the_stripe_secret_key_is_in_no_response_and_no_log_record(fake_gateway, settings, caplog):
    unpaid = new_order(fake_gateway, price="10.50")
    authorised = authorised_order(fake_gateway, price="10.50")
    settings.STRIPE_SECRET_KEY = SECRET
    # A real Stripe client with the secret, pointed at a closed port: every call fails.
    unreachable = StripeGateway(
        secret_key=SECRET,
        webhook_secret="whsec_test",
        api_base="http://127.0.0.1:9",
        timeout=1,
    )
    owner = Api(token_for(staff("owner")))
    caplog.set_level(logging.DEBUG)
    responses = []
    with use_gateway(unreachable):
        responses += [
            owner.get("/orders"),
            owner.get(f"/orders/{unpaid.number}"),
            owner.get(f"/orders/{authorised.number}/events"),
            owner.get("/products"),
            owner.get("/refunds"),
            owner.get("/orders/SK-NOPE"),
            owner.get("/orders", cursor="bad"),
            owner.post(f"/orders/{unpaid.number}/cancel", {"reason": "x"}),
            owner.post(f"/orders/{authorised.number}/capture", {"amount": "1.00"}),
            owner.post(f"/orders/{authorised.number}/cancel", {"reason": "x"}),
            owner.post(f"/orders/{authorised.number}/capture", {"amount": "x"}),
            Client().get("/api/openapi.json"),
            Client().get("/api/admin/orders"),
        ]
    statuses = [r.status_code for r in responses]
    # The capture's outcome is unknown (503), so the cancel after it is refused until its lease
    # ends (409 operation_in_progress), and never reaches Stripe.
    assert statuses == [200, 200, 200, 200, 200, 404, 422, 503, 503, 409, 422, 200, 401]
    for response in responses:
        assert SECRET.encode() not in response.content
        assert b"sk_test_51" not in response.content
        assert SECRET not in str(response.headers)
    assert caplog.records  # the failures were logged...
    for record in caplog.records:
        assert SECRET not in record.getMessage()  # ...without the key
        assert SECRET not in str(record.args or "")
    assert "sk_test_51" not in repr(unreachable)
