"""The order page's shipments and returns (issue 11): its sections, the buttons each state and
role offers, the dialogs behind them, and the timeline's entries."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from shopkeeper.accounts.models import User
from shopkeeper.fulfilment.services import deliver_shipment, ship_order
from shopkeeper.orders.notes import add_note
from shopkeeper.returns.rules import ReceivedLine, ReturnLineRequest
from shopkeeper.returns.services import (
    receive_return,
    refund_return,
    reject_return,
    request_return,
)
from tests.factories import authorised_order, paid_order, staff

pytestmark = pytest.mark.django_db


def page_as(role: str, number: str) -> str:
    user = User.objects.filter(email=f"{role}@shop.example").first() or staff(role)
    client = Client()
    client.force_login(user)
    response = client.get(f"/admin/orders/{number}")
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, testid: str) -> str:
    found = re.search(rf'<section class="card" data-testid="{testid}">(.*?)</section>', html, re.S)
    assert found, f"no {testid} section"
    return found.group(1)


def opens(html: str) -> set[str]:
    return set(re.findall(r'data-open-dialog="([^"]+)"', html))


def shipped(fake_gateway, *, items=None, price="10.00"):
    order = paid_order(fake_gateway, items=items or {"MUG": 2, "CAP": 1}, price=price)
    actor = staff("manager", "shipper@shop.example")
    shipment = ship_order(
        order_number=order.number, actor=actor, lines=None, carrier="DHL", tracking_number="TRK-9"
    )
    return order, shipment, actor


def asked(order, actor, lines=(("MUG", 1, "damaged"),), note="box crushed"):
    return request_return(
        order_number=order.number,
        lines=[ReturnLineRequest(*line) for line in lines],
        note=note,
        actor=actor,
    )


def test_given_a_paid_order_when_support_opens_it_then_ship_offered_and_nothing_shipped(
    fake_gateway,
):
    order = paid_order(fake_gateway, items={"MUG": 2}, price="10.00")
    html = page_as("support", order.number)
    assert {"ship-dialog", "note-dialog"} <= opens(html)
    assert "return-dialog" not in opens(html)  # nothing shipped: nothing to return
    assert 'id="ship-dialog"' in html and 'max="2" value="2"' in html
    assert "Nothing shipped yet." in section(html, "shipments")
    assert "No returns." in section(html, "returns")


def test_given_a_viewer_then_shipments_and_returns_shown_without_any_button(fake_gateway):
    order, _, actor = shipped(fake_gateway)
    asked(order, actor)
    html = page_as("viewer", order.number)
    assert "TRK-9" in section(html, "shipments")
    assert "1 \u00d7 Mug" in section(html, "returns")
    assert opens(html) == set()
    assert "<dialog" not in html


def test_given_everything_shipped_then_the_shipment_row_offers_delivery_and_return_not_ship(
    fake_gateway,
):
    order, shipment, _ = shipped(fake_gateway)
    html = page_as("manager", order.number)
    shipments = section(html, "shipments")
    assert "DHL" in shipments and "TRK-9" in shipments
    assert 'data-shipment-status="shipped"' in shipments
    assert 'data-fulfillment-status="fulfilled"' in shipments
    assert {f"deliver-shipment-{shipment.pk}", "return-dialog"} <= opens(html)
    assert "ship-dialog" not in opens(html)
    deliver_shipment(order_number=order.number, shipment_id=shipment.pk, actor=staff("owner"))
    html = page_as("manager", order.number)
    assert 'data-shipment-status="delivered"' in section(html, "shipments")
    assert f"deliver-shipment-{shipment.pk}" not in opens(html)


def test_given_part_shipped_then_ship_offers_only_what_is_left(fake_gateway):
    order = paid_order(fake_gateway, items={"MUG": 3}, price="10.00")
    ship_order(order_number=order.number, actor=staff("owner"), lines={"MUG": 1})
    html = page_as("support", order.number)
    assert "ship-dialog" in opens(html)
    assert "2 left to ship" in html and 'max="2" value="2"' in html
    assert 'data-fulfillment-status="partially_fulfilled"' in section(html, "shipments")


def test_given_an_authorised_order_when_shipped_then_cancel_is_gone(fake_gateway):
    order = authorised_order(fake_gateway, items={"MUG": 1}, price="10.00")
    assert "cancel-dialog" in opens(page_as("manager", order.number))
    ship_order(order_number=order.number, actor=staff("owner"), lines=None)
    html = page_as("manager", order.number)
    assert "cancel-dialog" not in opens(html) and "ship-dialog" not in opens(html)


def test_given_a_requested_return_then_receive_and_reject_offered_not_refund(fake_gateway):
    order, _, actor = shipped(fake_gateway)
    returned = asked(order, actor)
    html = page_as("support", order.number)
    returns = section(html, "returns")
    assert 'data-return-status="requested"' in returns
    assert "Damaged" in returns and "box crushed" in returns and "by staff" in returns
    assert {f"receive-return-{returned.pk}", f"reject-return-{returned.pk}"} <= opens(html)
    assert f"refund-return-{returned.pk}" not in opens(html)
    # the return holds one mug back: one mug and the cap are still returnable
    dialog = html[html.index('id="return-dialog"') :]
    assert dialog.index('max="1"') < dialog.index("</dialog>")


def test_given_a_received_return_then_refund_offered_with_the_received_lines(fake_gateway):
    order, _, actor = shipped(fake_gateway)
    returned = asked(order, actor, lines=(("MUG", 2, "no_longer_needed"),))
    receive_return(return_id=returned.pk, lines=[ReceivedLine("MUG", 1, True)], actor=actor)
    html = page_as("manager", order.number)
    returns = section(html, "returns")
    assert 'data-return-status="received"' in returns
    assert "1 received, restocked" in returns
    assert {f"refund-return-{returned.pk}", f"reject-return-{returned.pk}"} <= opens(html)
    assert f"receive-return-{returned.pk}" not in opens(html)
    dialog = html[html.index(f'id="refund-return-{returned.pk}"') :]
    dialog = dialog[: dialog.index("</dialog>")]
    assert 'data-quantity="1"' in dialog and 'name="include_shipping"' in dialog


def test_given_a_viewer_or_a_support_without_refund_rights_then_no_refund_of_the_return(
    fake_gateway,
):
    order, _, actor = shipped(fake_gateway)
    returned = asked(order, actor)
    receive_return(return_id=returned.pk, lines=None, actor=actor)
    assert f"refund-return-{returned.pk}" not in opens(page_as("viewer", order.number))


def test_given_a_return_refund_above_the_limit_then_the_wait_for_approval_is_shown(
    fake_gateway,
):
    # 10 mugs at 10.50: refunding them is above support's limit
    order, _, _ = shipped(fake_gateway, items={"MUG": 10}, price="10.50")
    support = staff("support", "support-returns@shop.example")
    returned = asked(order, support, lines=(("MUG", 10, "damaged"),))
    receive_return(return_id=returned.pk, lines=None, actor=support)
    refund = refund_return(return_id=returned.pk, actor=support)
    assert refund.status == "awaiting_approval"
    html = page_as("manager", order.number)
    returns = section(html, "returns")
    assert "Refund of 105.00 USD awaits a manager's approval" in returns
    # neither refunded twice nor rejected while the refund waits
    assert f"refund-return-{returned.pk}" not in opens(html)
    assert f"reject-return-{returned.pk}" not in opens(html)


def test_given_a_refunded_and_a_rejected_return_then_no_buttons_and_the_timeline_tells(
    fake_gateway,
):
    order, _, actor = shipped(fake_gateway, items={"MUG": 2, "CAP": 1})
    first = asked(order, actor)
    receive_return(return_id=first.pk, lines=[ReceivedLine("MUG", 1, True)], actor=actor)
    refund = refund_return(return_id=first.pk, include_shipping=False, actor=actor)
    assert refund.status == "succeeded"
    second = asked(order, actor, lines=(("CAP", 1, "wrong_item"),), note="")
    reject_return(return_id=second.pk, note="worn, not returnable", actor=actor)
    add_note(order_number=order.number, text="customer called twice", actor=actor)
    html = page_as("manager", order.number)
    returns = section(html, "returns")
    assert 'data-return-status="refunded"' in returns
    assert 'data-return-status="rejected"' in returns and "worn, not returnable" in returns
    assert not {f"refund-return-{first.pk}", f"reject-return-{second.pk}"} & opens(html)
    timeline = section(html, "timeline")
    for kind in (
        "order.shipped",
        "order.return.requested",
        "order.return.received",
        "order.return.refunded",
        "order.return.rejected",
        "order.note",
    ):
        assert f'data-event="{kind}"' in timeline, kind
    assert "TRK-9" in timeline and "DHL" in timeline
    assert "1 \u00d7 MUG (damaged)" in timeline and "Restocked 1 \u00d7 MUG" in timeline
    assert "customer called twice" in timeline and "worn, not returnable" in timeline


def test_given_a_customer_return_then_the_page_and_timeline_say_the_customer_asked(fake_gateway):
    order, _, _ = shipped(fake_gateway)
    request_return(
        order_number=order.number,
        lines=[ReturnLineRequest("CAP", 1, "not_as_described")],
        note="",
        actor=None,
        source="customer",
    )
    html = page_as("support", order.number)
    assert "by the customer" in section(html, "returns")
    assert "Asked by the customer" in section(html, "timeline")
