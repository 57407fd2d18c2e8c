"""Which processing jobs must not run at once (stripe_events.job_lock): those of one
PaymentIntent, whatever the event's object."""

from __future__ import annotations

import pytest

from shopkeeper.stripe_events.job_lock import processing_lock


def event(obj: dict, event_id: str = "evt_1") -> dict:
    return {"id": event_id, "type": "x", "data": {"object": obj}}


@pytest.mark.parametrize(
    "obj",
    [
        {"id": "pi_1", "object": "payment_intent"},
        {"id": "ch_1", "object": "charge", "payment_intent": "pi_1"},
        {"id": "re_1", "object": "refund", "payment_intent": "pi_1", "charge": "ch_1"},
        {"id": "dp_1", "object": "dispute", "payment_intent": {"id": "pi_1"}, "charge": "ch_1"},
    ],
)
def test_given_any_object_of_one_payment_intent_then_one_lock(obj):
    assert processing_lock(event(obj)) == "stripe:pi_1"


def test_given_no_payment_intent_then_the_charge_then_the_object_then_the_event():
    assert processing_lock(event({"id": "dp_1", "object": "dispute", "charge": "ch_9"})) == (
        "stripe:ch_9"
    )
    assert processing_lock(event({"id": "cus_1", "object": "customer"})) == "stripe:cus_1"
    assert processing_lock(event({}, "evt_9")) == "stripe:evt_9"
