"""The back office's server-rendered pages: sign-in, access, and what each role is offered."""

from __future__ import annotations

import pytest
from django.test import Client

from shopkeeper.audit.models import AuditEntry
from shopkeeper.backoffice.panel import order_panel_context
from tests.factories import PASSWORD, authorised_order, new_order, paid_order, staff

pytestmark = pytest.mark.django_db


def signed_in(role: str) -> tuple[Client, object]:
    user = staff(role, password=PASSWORD)
    client = Client()
    client.force_login(user)
    return client, user


def test_given_signed_out_when_opening_admin_then_the_login_form_is_shown():
    response = Client().get("/admin/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_given_signed_out_when_opening_an_order_then_redirected_to_login():
    response = Client().get("/admin/orders/SK-NOPE")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/orders/SK-NOPE")


def test_given_staff_credentials_when_signing_in_then_the_orders_list_follows():
    staff("viewer", password=PASSWORD)
    client = Client()
    response = client.post(
        "/admin/login/", {"username": "viewer@shop.example", "password": PASSWORD}
    )
    assert response.status_code == 302
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0] == "/admin/orders"
    assert b"viewer@shop.example" in response.content


def test_given_wrong_password_when_signing_in_then_the_form_says_so():
    staff("viewer", password=PASSWORD)
    response = Client().post(
        "/admin/login/", {"username": "viewer@shop.example", "password": "nope"}
    )
    assert response.status_code == 200
    assert b'role="alert"' in response.content


def test_given_signed_in_when_signing_out_by_post_then_the_session_ends():
    client, _ = signed_in("viewer")
    assert client.post("/admin/logout/").status_code == 302
    assert client.get("/admin/orders").status_code == 302


def test_given_a_user_without_a_role_when_opening_orders_then_403_page_and_audited():
    client, _ = signed_in("")
    response = client.get("/admin/orders")
    assert response.status_code == 403
    assert b"You do not have permission" in response.content
    assert AuditEntry.objects.filter(action="permission.denied").exists()


def test_given_an_unknown_order_when_opened_then_404_page():
    client, _ = signed_in("viewer")
    assert client.get("/admin/orders/SK-NOPE").status_code == 404


def test_given_paid_order_when_viewer_opens_it_then_no_action_buttons(fake_gateway):
    order = paid_order(fake_gateway, price="10.50")
    client, _ = signed_in("viewer")
    html = client.get(f"/admin/orders/{order.number}").content.decode()
    assert order.number in html
    assert "data-open-dialog" not in html
    assert "26.00" in html


def test_given_paid_order_when_support_opens_it_then_refund_offered_and_cancel_explained(
    fake_gateway,
):
    order = paid_order(fake_gateway, price="10.50")
    client, _ = signed_in("support")
    html = client.get(f"/admin/orders/{order.number}").content.decode()
    assert 'data-open-dialog="refund-dialog"' in html
    assert 'data-open-dialog="cancel-dialog"' not in html
    assert "A paid order must be refunded in full before it can be cancelled" in html
    assert "Visa •••• 4242" in html
    assert order.payments.get().intent_id in html


def test_given_authorised_order_when_manager_opens_it_then_capture_and_cancel_offered(
    fake_gateway,
):
    order = authorised_order(fake_gateway, price="10.50")
    client, _ = signed_in("manager")
    html = client.get(f"/admin/orders/{order.number}").content.decode()
    assert 'data-open-dialog="capture-dialog"' in html
    assert 'data-open-dialog="cancel-dialog"' in html
    assert 'data-open-dialog="refund-dialog"' not in html


def test_given_an_order_captured_on_fulfilment_then_its_page_says_when_it_is_captured(
    fake_gateway,
):
    order = new_order(fake_gateway, capture="on_fulfillment", pay=True)
    manual = authorised_order(fake_gateway)
    client, _ = signed_in("viewer")

    html = client.get(f"/admin/orders/{order.number}").content.decode()
    assert "On fulfilment: when the last shipment leaves" in html
    other = client.get(f"/admin/orders/{manual.number}").content.decode()
    assert "<dd>Manual</dd>" in other and "On fulfilment" not in other


def test_given_unchanged_order_when_the_panel_is_polled_with_its_etag_then_304(fake_gateway):
    order = paid_order(fake_gateway, price="10.50")
    client, _ = signed_in("viewer")
    first = client.get(f"/admin/orders/{order.number}/panel")
    assert first.status_code == 200 and b'id="order-panel"' in first.content
    again = client.get(f"/admin/orders/{order.number}/panel", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_given_repeated_wrong_passwords_when_signing_in_then_the_form_throttles(settings):
    settings.SHOPKEEPER_LOGIN_MAX_FAILURES = 2
    staff("viewer", password=PASSWORD)
    client = Client()
    for _ in range(2):
        client.post("/admin/login/", {"username": "viewer@shop.example", "password": "nope"})
    response = client.post(
        "/admin/login/", {"username": "viewer@shop.example", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert b"Too many failed sign-in attempts" in response.content


def request_refund_as(user, order, amount: str) -> dict:
    client = Client()
    client.force_login(user)
    response = client.post(
        f"/api/admin/orders/{order.number}/refunds",
        {"amount": amount, "reason": "requested_by_customer"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()["refund"]


def test_given_refund_awaiting_approval_then_only_another_approver_sees_approve(fake_gateway):
    # 10 x 10.50 + 5.00 shipping: 110.00 USD, above support's limit
    order = paid_order(fake_gateway, price="10.50", items={"MUG": 10})
    support = staff("support", password=PASSWORD)
    refund = request_refund_as(support, order, "110.00")
    assert refund["status"] == "awaiting_approval"
    pages = {}
    for role, user in (
        ("support", support),
        ("viewer", staff("viewer", password=PASSWORD)),
        ("manager", staff("manager", password=PASSWORD)),
    ):
        client = Client()
        client.force_login(user)
        pages[role] = client.get(f"/admin/orders/{order.number}").content.decode()
    approve = 'data-open-dialog="approve-dialog"'
    assert approve not in pages["support"]  # the requester cannot approve their own refund
    assert approve not in pages["viewer"]
    assert approve in pages["manager"]
    assert 'data-pending="true"' in pages["manager"]  # the page polls until it is decided
    assert "110.00 in progress" in pages["manager"]


def test_given_a_refund_awaiting_approval_then_the_panel_decides_four_eyes_by_id(fake_gateway):
    order = paid_order(fake_gateway, price="10.50", items={"MUG": 10})  # above support's limit
    support = staff("support", password=PASSWORD)
    request_refund_as(support, order, "110.00")
    manager = staff("manager", password=PASSWORD)
    # When the manager's e-mail reads as the requester's (the rule is about people, not
    # addresses) and the requester looks at the same page
    manager.email = support.email
    as_manager = order_panel_context(number=order.number, user=manager)
    as_requester = order_panel_context(number=order.number, user=support)
    # Then only the other person may review it, as refunds.services.approve_refund decides
    assert [r["reviewable"] for r in as_manager["refunds"]] == [True]
    assert [r["reviewable"] for r in as_requester["refunds"]] == [False]
    assert as_manager["reserved"] == "110.00"
