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
