"""The timeline names events in words staff read: what happened, how much, by whom, why."""

from __future__ import annotations

from datetime import UTC, datetime

from shopkeeper.backoffice.timeline import describe, timeline, title_of

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_given_a_ledger_movement_then_titled_with_its_amount_and_currency():
    event = {
        "at": AT,
        "type": "ledger.refund",
        "actor": "Stripe",
        "amount": "10.00",
        "currency": "USD",
        "details": {},
    }
    described = describe(event)
    assert (described["title"], described["amount"], described["actor"]) == (
        "Money refunded",
        "10.00 USD",
        "Stripe",
    )


def test_given_a_refund_audit_entry_then_reason_code_becomes_words():
    event = {
        "at": AT,
        "type": "order.refund.requested",
        "actor": "support@shop.example",
        "details": {"amount": "110.00 USD", "reason": "requested_by_customer", "note": "broken"},
    }
    described = describe(event)
    assert described["title"] == "Refund requested"
    assert described["amount"] == "110.00 USD"
    assert described["notes"] == ["Requested by customer", "broken"]


def test_given_a_cancellation_then_its_free_text_reason_is_kept_as_written():
    event = {
        "at": AT,
        "type": "order.cancelled",
        "actor": "m@x",
        "details": {"reason": "duplicate order"},
    }
    assert describe(event)["notes"] == ["duplicate order"]
    assert describe(event)["title"] == "Order cancelled"


def test_given_an_unknown_event_type_then_a_readable_fallback():
    assert title_of("order.shipped_late") == "Order shipped late"
    assert title_of("ledger.mystery") == "ledger.mystery"
    assert title_of("order.refund.awaiting_approval") == "Refund awaiting approval"


def test_given_events_oldest_first_then_the_timeline_shows_newest_first():
    events = [
        {"at": AT, "type": "order.placed", "details": {}},
        {"at": AT, "type": "payment.paid", "details": {}},
    ]
    assert [e["title"] for e in timeline(events)] == ["Payment received", "Order placed"]


def test_given_dispute_news_then_staff_read_whether_the_money_is_gone():
    lost = describe({"at": AT, "type": "order.dispute.lost", "actor": "Stripe", "details": {}})
    won = describe({"at": AT, "type": "order.dispute.won", "actor": "Stripe", "details": {}})

    assert (lost["title"], lost["tone"]) == ("Dispute lost, the disputed money is gone", "bad")
    assert (won["title"], won["tone"]) == ("Dispute won, money back with the shop", "good")


def test_given_a_shipment_then_carrier_and_tracking_number_are_its_notes():
    event = {
        "at": AT,
        "type": "order.shipped",
        "actor": "support@shop.example",
        "after": {"shipment": 1, "lines": {"MUG": 2}},
        "details": {"carrier": "DHL", "tracking_number": "TRK-9"},
    }
    described = describe(event)
    assert (described["title"], described["notes"]) == ("Shipped", ["DHL", "TRK-9"])


def test_given_a_customer_return_then_who_asked_and_the_lines_with_reasons_in_words():
    event = {
        "at": AT,
        "type": "order.return.requested",
        "after": {"return": 3, "source": "customer"},
        "details": {"lines": [["MUG", 1, "damaged"], ["CAP", 2, "no_longer_needed"]], "note": ""},
    }
    described = describe(event)
    assert described["title"] == "Return requested"
    assert described["notes"] == [
        "Asked by the customer",
        "1 \u00d7 MUG (damaged), 2 \u00d7 CAP (no longer needed)",
    ]


def test_given_a_received_return_then_what_came_back_and_what_was_restocked():
    event = {
        "at": AT,
        "type": "order.return.received",
        "after": {"return": 3, "status": "received"},
        "details": {"lines": [["MUG", 1], ["CAP", 0]], "restocked": {"MUG": 1}},
    }
    described = describe(event)
    assert described["title"] == "Return received"
    assert described["notes"] == ["1 \u00d7 MUG, 0 \u00d7 CAP", "Restocked 1 \u00d7 MUG"]


def test_given_refunded_and_rejected_returns_and_a_note_then_titled_in_words():
    refunded = describe(
        {"at": AT, "type": "order.return.refunded", "details": {"amount": "10.00 USD"}}
    )
    rejected = describe({"at": AT, "type": "order.return.rejected", "details": {"note": "worn"}})
    note = describe({"at": AT, "type": "order.note", "details": {"text": "called"}})
    assert (refunded["title"], refunded["amount"]) == ("Return refunded", "10.00 USD")
    assert (rejected["title"], rejected["notes"]) == ("Return rejected", ["worn"])
    assert (note["title"], note["notes"]) == ("Note", ["called"])


def test_given_lines_of_an_unknown_shape_then_skipped_rather_than_failing():
    described = describe({"at": AT, "type": "order.placed", "details": {"lines": ["MUG"]}})
    assert described["notes"] == []
