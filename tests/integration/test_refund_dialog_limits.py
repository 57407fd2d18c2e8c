"""The refund dialog says, before the confirm step, whether approval will be needed.

What it says is the server's: the panel renders the person's allowance on the order, and the
dialog's script asks the preview endpoint (`data-preview-url`) about the chosen refund.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from shopkeeper.refunds.services import request_refund
from tests.factories import paid_order, staff

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limits(settings):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"USD": "10.00"}}
    settings.SHOPKEEPER_REFUND_DAILY_LIMITS = {"support": {"USD": "500.00"}}


def dialog_html(client: Client, number: str) -> str:
    html = client.get(f"/admin/orders/{number}").content.decode()
    match = re.search(r'<dialog id="refund-dialog".*?</dialog>', html, re.S)
    assert match, "no refund dialog"
    return match.group(0)


def test_given_support_with_earlier_refund_when_opening_the_dialog_then_the_allowance_is_shown(
    fake_gateway,
):
    order = paid_order(fake_gateway, price="10.50")  # 26.00 USD
    support = staff("support")
    request_refund(order_number=order.number, actor=support, amount="4.00", reason="other")
    client = Client()
    client.force_login(support)

    dialog = dialog_html(client, order.number)

    assert f'data-preview-url="/api/admin/orders/{order.number}/refunds/preview"' in dialog
    assert "Up to 6.00 USD can be refunded here without a manager&#x27;s approval" in dialog


def test_given_support_in_a_currency_without_limit_then_the_dialog_says_every_refund_waits(
    fake_gateway, settings
):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"EUR": "10.00"}}
    order = paid_order(fake_gateway, price="10.50")
    client = Client()
    client.force_login(staff("support"))

    dialog = dialog_html(client, order.number)

    assert "No refund limit is set for USD for your role" in dialog
    assert "every refund in USD needs a manager&#x27;s approval" in dialog


def test_given_manager_without_limits_then_the_dialog_mentions_no_approval(fake_gateway):
    order = paid_order(fake_gateway, price="10.50")
    client = Client()
    client.force_login(staff("manager"))

    dialog = dialog_html(client, order.number)

    assert 'data-testid="refund-approval-outlook"' not in dialog


def test_given_support_signed_in_when_the_dialog_previews_through_the_session_then_answered(
    fake_gateway,
):
    order = paid_order(fake_gateway, price="10.50")
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff("support"))
    client.get(f"/admin/orders/{order.number}")  # sets the CSRF cookie, as the page does

    response = client.post(
        f"/api/admin/orders/{order.number}/refunds/preview",
        {"amount": "10.01"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )

    assert response.status_code == 200, response.content
    assert response.json()["needs_approval"] is True
