"""Staff notes on an order (issue 11): 201, in the timeline, audited; refused when empty or by
a viewer; never shown to the customer."""

from __future__ import annotations

import pytest

from shopkeeper.audit.models import AuditEntry
from tests.factories import paid_order
from tests.integration.orders_admin_fixtures import api_as

pytestmark = pytest.mark.django_db


def test_given_a_note_then_201_and_it_is_in_the_timeline_with_its_author(fake_gateway):
    order = paid_order(fake_gateway)
    api = api_as("support")

    response = api.post(f"/orders/{order.number}/notes", {"text": "  Customer called: gift wrap  "})

    assert response.status_code == 201, response.content
    note = response.json()
    assert (note["text"], note["author"]) == ("Customer called: gift wrap", "support@shop.example")
    entry = AuditEntry.objects.get(action="order.note")
    assert (entry.target_id, entry.details) == (
        order.number,
        {"text": "Customer called: gift wrap"},
    )
    events = api.get(f"/orders/{order.number}/events").json()
    assert any(e["type"] == "order.note" for e in events)


@pytest.mark.parametrize(
    ("text", "code"),
    [("", "note_required"), ("   ", "note_required"), ("x" * 2001, "invalid_input")],
)
def test_given_no_text_or_too_much_then_422_and_nothing_recorded(fake_gateway, text, code):
    order = paid_order(fake_gateway)

    response = api_as("manager").post(f"/orders/{order.number}/notes", {"text": text})

    assert response.status_code == 422 and response.json()["code"] == code
    assert not AuditEntry.objects.filter(action="order.note").exists()


def test_given_a_viewer_or_an_unknown_order_then_refused(fake_gateway):
    order = paid_order(fake_gateway)
    assert api_as("viewer").post(f"/orders/{order.number}/notes", {"text": "hi"}).status_code == 403
    owner = api_as("owner")
    assert owner.post("/orders/SK-NOPE/notes", {"text": "hi"}).json()["code"] == "order_not_found"
