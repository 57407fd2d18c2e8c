"""POST /webhooks/stripe: signature on the raw body, one row per event id, dispatch by type."""

import json
import time
from dataclasses import replace

import pytest
from django.test import Client
from procrastinate import sql
from procrastinate.contrib.django.django_connector import DjangoConnector

from shopkeeper.audit.models import AuditEntry
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.orders.models import Attention, Order
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.stripe_events import dispatch
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import ADDRESS, product
from tests.fakes import intent_event_payload, sign_payload
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db

URL = "/webhooks/stripe"


@pytest.fixture
def stripe_client():
    """Stripe sends no cookies and no CSRF token."""
    return Client(enforce_csrf_checks=True)


def deliver(client, payload: bytes, signature: str | None = None):
    """Stripe's POST, then the worker: the jobs the webhook deferred run (tests.jobs)."""
    headers = (
        {} if signature == "" else {"HTTP_STRIPE_SIGNATURE": signature or sign_payload(payload)}
    )
    response = client.post(URL, data=payload, content_type="application/json", **headers)
    run_jobs()
    return response


def order_of(placed):
    return Order.objects.get(pk=placed.order.pk)


def ledger():
    return sorted(LedgerEntry.objects.values_list("kind", "amount_minor"))


def test_given_succeeded_event_when_delivered_then_order_paid_and_event_stored(
    stripe_client, placed, fake_gateway
):
    payload = intent_event_payload(
        fake_gateway.pay(placed.payment.intent_id), "payment_intent.succeeded", "evt_1"
    )

    response = deliver(stripe_client, payload)

    assert response.status_code == 200
    assert response.json()["status"] == "received"
    order = order_of(placed)
    assert (order.status, order.payment_status) == ("processing", "paid")
    assert ledger() == [("authorization", 2600), ("capture", 2600)]
    event = WebhookEvent.objects.get()
    assert (event.event_id, event.type, event.status) == (
        "evt_1",
        "payment_intent.succeeded",
        "processed",
    )
    assert event.payload == json.loads(payload)
    assert AuditEntry.objects.get(action="payment.paid").details["source"] == "webhook"


def test_given_manual_capture_when_capturable_updated_then_authorized(
    stripe_client, settings, fake_gateway
):
    settings.SHOPKEEPER_CAPTURE = "manual"
    product("MUG", price="10.50", stock=5)
    placed = place_order(
        email="a@example.com", items=[BasketItem("MUG", 1)], shipping_address=ADDRESS
    )
    intent = fake_gateway.pay(placed.payment.intent_id)

    response = deliver(
        stripe_client, intent_event_payload(intent, "payment_intent.amount_capturable_updated")
    )

    assert response.status_code == 200
    order = order_of(placed)
    assert (order.status, order.payment_status) == ("processing", "authorized")
    assert ledger() == [("authorization", 1550)]


def test_given_payment_failed_event_when_delivered_then_failed(stripe_client, placed, fake_gateway):
    intent = fake_gateway.pay(placed.payment.intent_id, decline=True)

    response = deliver(stripe_client, intent_event_payload(intent, "payment_intent.payment_failed"))

    assert response.status_code == 200
    order = order_of(placed)
    assert (order.status, order.payment_status) == ("pending", "failed")
    assert Payment.objects.get().last_error == "Card declined"


def test_given_canceled_event_when_delivered_then_voided(stripe_client, placed, fake_gateway):
    intent = fake_gateway.cancel_payment_intent(placed.payment.intent_id, idempotency_key="c")

    response = deliver(stripe_client, intent_event_payload(intent, "payment_intent.canceled"))

    assert response.status_code == 200
    assert order_of(placed).payment_status == "voided"


def test_given_same_event_when_delivered_twice_then_second_is_a_duplicate_with_no_effect(
    stripe_client, placed, fake_gateway
):
    payload = intent_event_payload(
        fake_gateway.pay(placed.payment.intent_id), "payment_intent.succeeded", "evt_dup"
    )
    assert deliver(stripe_client, payload).status_code == 200
    audit_count, ledger_rows = AuditEntry.objects.count(), ledger()

    response = deliver(stripe_client, payload)

    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert WebhookEvent.objects.count() == 1
    assert (AuditEntry.objects.count(), ledger()) == (audit_count, ledger_rows)


def test_given_paid_when_an_older_payment_failed_event_arrives_then_nothing_changes(
    stripe_client, placed, fake_gateway
):
    intent_id = placed.payment.intent_id
    declined = fake_gateway.pay(intent_id, decline=True)
    succeeded = fake_gateway.pay(intent_id)
    deliver(stripe_client, intent_event_payload(succeeded, "payment_intent.succeeded", "evt_new"))
    payment_before = Payment.objects.values().get()

    response = deliver(
        stripe_client, intent_event_payload(declined, "payment_intent.payment_failed", "evt_old")
    )

    assert response.status_code == 200
    order = order_of(placed)
    assert (order.status, order.payment_status) == ("processing", "paid")
    assert Payment.objects.values().get() == payment_before
    assert ledger() == [("authorization", 2600), ("capture", 2600)]
    assert WebhookEvent.objects.get(event_id="evt_old").status == "processed"


@pytest.mark.parametrize("change", [{"amount": 1}, {"currency": "EUR"}])
def test_given_amount_or_currency_mismatch_when_delivered_then_payment_flagged_not_accepted(
    stripe_client, placed, fake_gateway, change
):
    intent = replace(fake_gateway.pay(placed.payment.intent_id), **change)

    response = deliver(stripe_client, intent_event_payload(intent, "payment_intent.succeeded"))

    assert response.status_code == 200
    order = order_of(placed)
    assert (order.status, order.payment_status) == ("pending", "pending")
    assert Payment.objects.get().flagged
    assert not LedgerEntry.objects.exists()
    assert AuditEntry.objects.filter(action="payment.flagged", target_id=order.number).exists()


def test_given_unhandled_type_when_delivered_then_200_and_stored_as_ignored(stripe_client):
    payload = json.dumps(
        {
            "id": "evt_customer",
            "object": "event",
            "type": "customer.created",
            "created": int(time.time()),
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        }
    ).encode()

    response = deliver(stripe_client, payload)

    assert response.status_code == 200
    assert response.json()["status"] == "received"
    assert WebhookEvent.objects.get().status == "ignored"


def test_given_intent_of_no_order_when_delivered_then_200_and_nothing_changes(
    stripe_client, placed, fake_gateway
):
    stranger = replace(fake_gateway.pay(placed.payment.intent_id), id="pi_elsewhere")

    response = deliver(stripe_client, intent_event_payload(stranger, "payment_intent.succeeded"))

    assert response.status_code == 200
    assert order_of(placed).payment_status == "pending"
    assert not LedgerEntry.objects.exists()


def _bad_signatures(payload: bytes) -> dict[str, str]:
    return {
        "missing": "",
        "wrong secret": sign_payload(payload, secret="whsec_someone_else"),
        "stale": sign_payload(payload, timestamp=int(time.time()) - 301),
        "other body": sign_payload(payload + b" "),
        "garbage": "t=1,v1=deadbeef",
    }


@pytest.mark.parametrize("case", ["missing", "wrong secret", "stale", "other body", "garbage"])
def test_given_bad_signature_when_delivered_then_400_problem_and_nothing_stored(
    stripe_client, placed, fake_gateway, case
):
    payload = intent_event_payload(
        fake_gateway.pay(placed.payment.intent_id), "payment_intent.succeeded"
    )

    response = deliver(stripe_client, payload, _bad_signatures(payload)[case])

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    assert order_of(placed).payment_status == "pending"
    assert not LedgerEntry.objects.exists()


def test_given_signed_body_re_serialised_when_delivered_then_rejected(
    stripe_client, placed, fake_gateway
):
    """The signature covers the raw bytes: the same JSON spelled differently is not signed."""
    payload = intent_event_payload(
        fake_gateway.pay(placed.payment.intent_id), "payment_intent.succeeded"
    )
    signature = sign_payload(payload)

    response = deliver(stripe_client, json.dumps(json.loads(payload), indent=2).encode(), signature)

    assert response.status_code == 400


def post_only(client, payload: bytes):
    """Stripe's POST alone: the event stored, its processing deferred but not run."""
    return client.post(
        URL,
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(payload),
    )


def test_given_handler_failure_when_processed_then_200_retried_and_processed_once(
    stripe_client, placed, fake_gateway, monkeypatch
):
    real = dispatch.HANDLERS["payment_intent.succeeded"]
    failures = [RuntimeError("database hiccup")]

    def flaky(event):
        if failures:
            raise failures.pop()
        real(event)

    monkeypatch.setitem(dispatch.HANDLERS, "payment_intent.succeeded", flaky)
    payload = intent_event_payload(
        fake_gateway.pay(placed.payment.intent_id), "payment_intent.succeeded", "evt_flaky"
    )

    first = post_only(stripe_client, payload)

    # Stripe hears 200 at once: the handler's failure is the worker's to retry, not Stripe's.
    assert (first.status_code, first.json()["status"]) == (200, "received")
    event = WebhookEvent.objects.get(event_id="evt_flaky")
    assert (event.status, event.attempts) == ("received", 0)
    assert order_of(placed).payment_status == "pending"

    runs = run_jobs()

    assert [run.outcome for run in runs] == ["retried", "succeeded"]
    assert "database hiccup" in str(runs[0].error)
    event.refresh_from_db()
    assert (event.status, event.error, event.attempts) == ("processed", "", 2)
    assert order_of(placed).payment_status == "paid"
    assert deliver(stripe_client, payload).json()["status"] == "duplicate"
    assert ledger() == [("authorization", 2600), ("capture", 2600)]


def test_given_handler_failing_every_try_then_failed_only_after_the_last_and_redelivery_processes(
    stripe_client, placed, fake_gateway, monkeypatch, settings
):
    real = dispatch.HANDLERS["payment_intent.succeeded"]
    broken = [True]

    def failing(event):
        if broken[0]:
            raise RuntimeError("still broken")
        real(event)

    monkeypatch.setitem(dispatch.HANDLERS, "payment_intent.succeeded", failing)
    payload = intent_event_payload(
        fake_gateway.pay(placed.payment.intent_id), "payment_intent.succeeded", "evt_broken"
    )
    post_only(stripe_client, payload)

    runs = run_jobs()

    tries = settings.SHOPKEEPER_WEBHOOK_TRIES
    assert tries >= 5
    assert [run.outcome for run in runs] == ["retried"] * (tries - 1) + ["failed"]
    event = WebhookEvent.objects.get(event_id="evt_broken")
    assert (event.status, event.attempts) == ("failed", tries)
    assert "still broken" in event.error
    assert order_of(placed).payment_status == "pending"
    assert not LedgerEntry.objects.exists()

    broken[0] = False
    again = deliver(stripe_client, payload)  # Stripe's redelivery (or a replay)

    assert again.json()["status"] == "received"
    event.refresh_from_db()
    assert (event.status, event.error) == ("processed", "")
    assert order_of(placed).payment_status == "paid"
    assert ledger() == [("authorization", 2600), ("capture", 2600)]


def test_given_handler_failing_when_one_try_is_left_then_still_received(
    stripe_client, placed, fake_gateway, monkeypatch, settings
):
    """Between tries the event waits as `received`, its failed tries and last error shown."""
    monkeypatch.setitem(dispatch.HANDLERS, "payment_intent.succeeded", lambda event: 1 / 0)
    payload = intent_event_payload(
        fake_gateway.pay(placed.payment.intent_id), "payment_intent.succeeded", "evt_waiting"
    )
    post_only(stripe_client, payload)

    runs = run_jobs(retries_wait=True)  # retries wait for their time, like the worker

    assert [run.outcome for run in runs] == ["retried"]
    event = WebhookEvent.objects.get(event_id="evt_waiting")
    assert (event.status, event.attempts) == ("received", 1)
    assert "ZeroDivisionError" in event.error


def test_given_handled_type_without_a_payment_intent_when_processed_then_failed_after_every_try(
    stripe_client,
):
    payload = json.dumps(
        {
            "id": "evt_odd",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {"object": {"id": "ch_1", "object": "charge"}},
        }
    ).encode()

    response = deliver(stripe_client, payload)

    assert response.status_code == 200
    assert WebhookEvent.objects.get().status == "failed"


def test_given_get_when_requested_then_405(stripe_client):
    assert stripe_client.get(URL).status_code == 405


@pytest.mark.parametrize(
    "payload",
    [b"[1, 2]", b'{"object": "event"}', b'{"id": "evt_x", "type": "x", "data": {"object": 3}}'],
)
def test_given_signed_payload_that_is_no_event_when_delivered_then_400_and_nothing_stored(
    stripe_client, payload
):
    response = deliver(stripe_client, payload)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    ("event_type", "stale_status"),
    [
        ("payment_intent.canceled", "canceled"),
        ("payment_intent.amount_capturable_updated", "requires_capture"),
        ("payment_intent.payment_failed", "requires_payment_method"),
    ],
)
def test_given_paid_when_late_events_of_any_earlier_kind_arrive_then_nothing_changes(
    stripe_client, placed, fake_gateway, event_type, stale_status
):
    """Out of order: an older or contradicting snapshot never overwrites what Stripe settled.

    A PaymentIntent never leaves `succeeded`: "canceled" after it contradicts our books, and
    flags the order for a person (audited) instead of recording a void.
    """
    succeeded = fake_gateway.pay(placed.payment.intent_id)
    deliver(stripe_client, intent_event_payload(succeeded, "payment_intent.succeeded"))
    audit_count, payment_before = AuditEntry.objects.count(), Payment.objects.values().get()
    stale = replace(succeeded, status=stale_status, amount_received=0, last_error="late")

    response = deliver(stripe_client, intent_event_payload(stale, event_type, "evt_late"))

    assert response.status_code == 200
    assert WebhookEvent.objects.get(event_id="evt_late").status == "processed"
    order = order_of(placed)
    assert (order.status, order.payment_status) == ("processing", "paid")
    assert Payment.objects.values().get() == payment_before
    assert ledger() == [("authorization", 2600), ("capture", 2600)]
    contradicts = stale_status == "canceled"
    assert AuditEntry.objects.count() == audit_count + contradicts
    flags = list(Attention.objects.values_list("code", flat=True))
    assert flags == (["void_after_capture"] if contradicts else [])


def test_given_a_signature_an_hour_ahead_when_delivered_then_400_and_nothing_stored(
    stripe_client, placed, fake_gateway
):
    """Stripe's SDK refuses only signatures too old; one from the future is refused too."""
    payload = intent_event_payload(
        fake_gateway.pay(placed.payment.intent_id), "payment_intent.succeeded"
    )
    for ahead in (3600, 301):
        signature = sign_payload(payload, timestamp=int(time.time()) + ahead)

        response = deliver(stripe_client, payload, signature)

        assert response.status_code == 400
        assert response.json()["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    assert deliver(stripe_client, payload, sign_payload(payload, timestamp=int(time.time()) + 30))
    assert order_of(placed).payment_status == "paid"  # small clock skew is tolerated


def _event(**changes) -> dict:
    event = {
        "id": "evt_shape",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {"object": {"id": "pi_shape", "object": "payment_intent", "amount": 100}},
    }
    return {**event, **changes}


MALFORMED = {
    "data a list": _event(data=[{"object": {"id": "pi_1"}}]),
    "a 10,000-character id": _event(id="evt_" + "x" * 10_000),
    "an id that is a number": _event(id=12345),
    "a null object id": _event(data={"object": {"id": None, "object": "payment_intent"}}),
    "a 10,000-character object id": _event(
        data={"object": {"id": "pi_" + "x" * 10_000, "object": "payment_intent"}}
    ),
    "a type that is a list": _event(type=["payment_intent.succeeded"]),
    "a 500-character type": _event(type="payment_intent." + "x" * 500),
    "created a string": _event(created="yesterday"),
    "a NUL byte in a field": _event(
        data={"object": {"id": "pi_1", "object": "payment_intent", "description": "a\u0000b"}}
    ),
    "a NUL byte in the type": _event(type="payment_intent.\u0000"),
    "an amount that is a string": _event(
        data={"object": {"id": "pi_1", "object": "payment_intent", "amount": "lots"}}
    ),
}


@pytest.mark.parametrize("case", MALFORMED.keys())
def test_given_a_signed_but_malformed_event_when_delivered_then_400_nothing_stored_a_log_line(
    stripe_client, caplog, case
):
    payload = json.dumps(MALFORMED[case]).encode()

    response = deliver(stripe_client, payload)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "malformed_event"
    assert not WebhookEvent.objects.exists()  # never a failure to retry forever
    assert "Rejected a Stripe webhook" in caplog.text


def test_given_events_of_one_payment_when_one_is_being_processed_then_the_next_waits_for_it(
    stripe_client, placed, fake_gateway
):
    """One job per PaymentIntent at a time (procrastinate's `lock`); other payments go on."""
    intent = fake_gateway.pay(placed.payment.intent_id)
    other = replace(intent, id="pi_other")
    post_only(stripe_client, intent_event_payload(intent, "payment_intent.succeeded", "evt_a"))
    post_only(stripe_client, intent_event_payload(intent, "payment_intent.succeeded", "evt_b"))
    post_only(stripe_client, intent_event_payload(other, "payment_intent.succeeded", "evt_c"))
    connector = DjangoConnector()

    def take() -> dict:
        return connector.execute_query_one(
            query=sql.queries["fetch_job"], queues=["webhooks"], worker_id=None
        )

    first, second, third = take(), take(), take()

    assert first["lock"] == f"stripe:{intent.id}" and "evt_a" in str(first["args"])
    assert second["lock"] == "stripe:pi_other"  # evt_b waits while evt_a's job runs
    assert third["id"] is None
