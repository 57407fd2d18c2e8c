"""Every request our Stripe client builds for real Stripe, as Stripe receives it.

Against `tests/stripe_recorder.StripeRecorder` (loopback, canned Stripe JSON), with the real
`StripeGateway` (not the emulator subclass): method, path, decoded form fields, the
`Idempotency-Key` on every POST, the pinned `Stripe-Version`, and no retries of the SDK's own.
"""

from __future__ import annotations

import pytest
from stripe._api_version import _ApiVersion

from shopkeeper.errors import PaymentOutcomeUnknown, PaymentRequestInvalid
from shopkeeper.money import Money
from shopkeeper.payments.stripe.client import STRIPE_API_VERSION, StripeGateway
from shopkeeper.payments.stripe_statuses import (
    ChargeStatus,
    DisputeStatus,
    IntentStatus,
    StripeRefundStatus,
)
from tests import stripe_recorder as canned
from tests.stripe_recorder import Answer, StripeRecorder

USD_25 = Money(2500, "USD")


@pytest.fixture
def gateway(recorder: StripeRecorder) -> StripeGateway:
    return StripeGateway(
        secret_key="sk_test_recorder",
        webhook_secret="whsec_recorder",
        api_base=recorder.url,
        timeout=2,
        retry_delays=(),  # our own retry layer off: each test counts the SDK's sends alone
    )


def sent(recorder: StripeRecorder, method: str, path: str, **form: str):
    """The one request, checked for what every request carries; returns it."""
    request = recorder.only()
    assert (request.method, request.path) == (method, path)
    assert request.form == form
    assert request.stripe_version == STRIPE_API_VERSION
    if method == "POST":
        assert request.idempotency_key
    else:
        assert request.idempotency_key is None
    return request


def test_the_pinned_api_version_is_the_one_the_installed_sdk_major_is_written_for():
    assert STRIPE_API_VERSION == _ApiVersion.CURRENT


def test_create_payment_intent_sends_amount_currency_capture_metadata_and_the_key(
    recorder, gateway
):
    recorder.answer("POST", "/v1/payment_intents", canned.intent("pi_9", capture_method="manual"))

    snapshot = gateway.create_payment_intent(
        amount=USD_25, order_number="SK-1", capture_method="manual", idempotency_key="order-SK-1-pi"
    )

    request = sent(
        recorder,
        "POST",
        "/v1/payment_intents",
        amount="2500",
        currency="usd",
        capture_method="manual",
        **{"metadata[order_number]": "SK-1", "automatic_payment_methods[enabled]": "true"},
    )
    assert request.idempotency_key == "order-SK-1-pi"
    assert request.headers["authorization"] == "Bearer sk_test_recorder"
    assert (snapshot.id, snapshot.status) == ("pi_9", IntentStatus.REQUIRES_PAYMENT_METHOD)


def test_confirm_sends_the_payment_method_in_one_request(recorder, gateway):
    recorder.answer(
        "POST",
        "/v1/payment_intents/pi_1/confirm",
        canned.intent(status="succeeded", amount_received=2500, latest_charge="ch_1"),
    )

    snapshot = gateway.confirm_payment_intent(
        "pi_1", payment_method="pm_card_visa", idempotency_key="payment-7-confirm-pm_card_visa"
    )

    request = sent(
        recorder, "POST", "/v1/payment_intents/pi_1/confirm", payment_method="pm_card_visa"
    )
    assert request.idempotency_key == "payment-7-confirm-pm_card_visa"
    assert (snapshot.status, snapshot.amount_received, snapshot.charge_id) == (
        IntentStatus.SUCCEEDED,
        2500,
        "ch_1",
    )


@pytest.mark.parametrize(
    ("amount", "form"), [(Money(1500, "USD"), {"amount_to_capture": "1500"}), (None, {})]
)
def test_capture_sends_the_amount_to_capture_when_partial(recorder, gateway, amount, form):
    recorder.answer("POST", "/v1/payment_intents/pi_1/capture", canned.intent(status="succeeded"))

    gateway.capture_payment_intent("pi_1", amount=amount, idempotency_key="capture-3")

    request = sent(recorder, "POST", "/v1/payment_intents/pi_1/capture", **form)
    assert request.idempotency_key == "capture-3"


def test_cancel_sends_no_parameters_and_the_key(recorder, gateway):
    recorder.answer("POST", "/v1/payment_intents/pi_1/cancel", canned.intent(status="canceled"))

    snapshot = gateway.cancel_payment_intent("pi_1", idempotency_key="order-SK-1-cancel-pi_1")

    request = sent(recorder, "POST", "/v1/payment_intents/pi_1/cancel")
    assert request.idempotency_key == "order-SK-1-cancel-pi_1"
    assert snapshot.status is IntentStatus.CANCELED


def test_retrieve_expands_the_latest_charge_and_reads_its_card(recorder, gateway):
    charge = canned.charge(payment_method_details={"card": {"brand": "visa", "last4": "4242"}})
    recorder.answer(
        "GET",
        "/v1/payment_intents/pi_1",
        canned.intent(status="requires_capture", amount_capturable=2500, latest_charge=charge),
    )

    snapshot = gateway.retrieve_payment_intent("pi_1")

    sent(recorder, "GET", "/v1/payment_intents/pi_1", **{"expand[0]": "latest_charge"})
    assert (snapshot.amount_capturable, snapshot.charge_id) == (2500, "ch_1")
    assert (snapshot.card_brand, snapshot.card_last4) == ("visa", "4242")


@pytest.mark.parametrize(
    ("reason", "stripe_reason"),
    [("requested_by_customer", {"reason": "requested_by_customer"}), ("other", {})],
)
def test_create_refund_sends_stripe_s_reason_only_when_stripe_has_it(
    recorder, gateway, reason, stripe_reason
):
    recorder.answer("POST", "/v1/refunds", canned.refund(status="pending"))

    snapshot = gateway.create_refund(
        intent_id="pi_1",
        amount=Money(500, "USD"),
        reason=reason,
        metadata={"refund_id": "41"},
        idempotency_key="refund-41",
    )

    request = sent(
        recorder,
        "POST",
        "/v1/refunds",
        payment_intent="pi_1",
        amount="500",
        **{"metadata[refund_id]": "41", "metadata[reason]": reason},
        **stripe_reason,
    )
    assert request.idempotency_key == "refund-41"
    assert snapshot.status is StripeRefundStatus.PENDING


def test_list_refunds_pages_through_every_page(recorder, gateway):
    recorder.answer(
        "GET",
        "/v1/refunds",
        canned.page("/v1/refunds", canned.refund("re_1"), has_more=True),
        canned.page("/v1/refunds", canned.refund("re_2", status="failed")),
    )

    refunds = gateway.list_refunds("pi_1")

    assert [(r.id, r.status) for r in refunds] == [
        ("re_1", StripeRefundStatus.SUCCEEDED),
        ("re_2", StripeRefundStatus.FAILED),
    ]
    first, second = recorder.requests
    assert (first.method, first.path, first.form) == (
        "GET",
        "/v1/refunds",
        {"payment_intent": "pi_1", "limit": "100"},
    )
    assert second.form == {"payment_intent": "pi_1", "limit": "100", "starting_after": "re_1"}
    assert {r.stripe_version for r in recorder.requests} == {STRIPE_API_VERSION}


def test_list_payment_intents_filters_by_created_at_stripe(recorder, gateway):
    recorder.answer(
        "GET", "/v1/payment_intents", canned.page("/v1/payment_intents", canned.intent())
    )

    ((snapshot,),) = gateway.list_payment_intents(created_gte=1_600_000_000)

    sent(
        recorder,
        "GET",
        "/v1/payment_intents",
        limit="100",
        **{"created[gte]": "1600000000"},
    )
    assert snapshot.id == "pi_1"


@pytest.mark.parametrize(
    ("listing", "path", "obj"),
    [
        ("list_account_charges", "/v1/charges", canned.charge),
        ("list_account_refunds", "/v1/refunds", canned.refund),
        ("list_account_disputes", "/v1/disputes", canned.dispute),
    ],
)
def test_account_lists_ask_by_created_and_page_one_request_at_a_time(
    recorder, gateway, listing, path, obj
):
    """Each page is one request, sent only when the caller asks for the page."""
    prefix = path.rsplit("/", 1)[1][:2]
    recorder.answer(
        "GET",
        path,
        canned.page(path, obj(f"{prefix}_1"), has_more=True),
        canned.page(path, obj(f"{prefix}_2")),
    )

    pages = getattr(gateway, listing)(created_gte=1_600_000_000)
    first = next(pages)
    assert len(recorder.requests) == 1
    rest = list(pages)

    assert [o.id for o in first] == [f"{prefix}_1"] and [o.id for o in rest[0]] == [f"{prefix}_2"]
    asked, then = recorder.requests
    assert (asked.path, asked.form) == (path, {"limit": "100", "created[gte]": "1600000000"})
    assert then.form == {
        "limit": "100",
        "created[gte]": "1600000000",
        "starting_after": obj(f"{prefix}_1")["id"],
    }


def test_list_charges_asks_by_payment_intent(recorder, gateway):
    recorder.answer(
        "GET",
        "/v1/charges",
        canned.page("/v1/charges", canned.charge(captured=False, amount_captured=0)),
    )

    (charge,) = gateway.list_charges("pi_1")

    sent(recorder, "GET", "/v1/charges", payment_intent="pi_1", limit="100")
    assert (charge.status, charge.captured, charge.amount_captured) == (
        ChargeStatus.SUCCEEDED,
        False,
        0,
    )


def test_list_disputes_asks_by_payment_intent(recorder, gateway):
    recorder.answer("GET", "/v1/disputes", canned.page("/v1/disputes", canned.dispute()))

    (dispute,) = gateway.list_disputes("pi_1")

    sent(recorder, "GET", "/v1/disputes", payment_intent="pi_1", limit="100")
    assert (dispute.id, dispute.status) == ("dp_1", DisputeStatus.NEEDS_RESPONSE)


SERVER_ERROR = Answer(
    {"error": {"type": "api_error", "message": "boom"}},
    status=500,
    headers={"Stripe-Should-Retry": "true"},
)


def test_the_sdk_never_retries_a_write_that_stripe_asks_to_retry(recorder, gateway):
    recorder.answer("POST", "/v1/refunds", SERVER_ERROR)

    with pytest.raises(PaymentOutcomeUnknown) as raised:
        gateway.create_refund(
            intent_id="pi_1", amount=USD_25, reason="other", metadata={}, idempotency_key="r-1"
        )

    assert len(recorder.requests) == 1
    assert raised.value.in_flight is False  # Stripe answered: the send had ended


def test_the_sdk_never_retries_a_read(recorder, gateway):
    recorder.answer("GET", "/v1/payment_intents/pi_1", SERVER_ERROR)

    with pytest.raises(PaymentOutcomeUnknown):
        gateway.retrieve_payment_intent("pi_1")

    assert len(recorder.requests) == 1


def test_our_one_retry_layer_resends_a_write_with_the_same_key(recorder):
    gateway = StripeGateway(
        secret_key="sk_test_recorder",
        webhook_secret="whsec_recorder",
        api_base=recorder.url,
        retry_delays=(0.0,),
    )
    recorder.answer("POST", "/v1/payment_intents/pi_1/cancel", SERVER_ERROR, canned.intent())

    gateway.cancel_payment_intent("pi_1", idempotency_key="order-SK-1-cancel-pi_1")

    keys = [r.idempotency_key for r in recorder.requests]
    assert keys == ["order-SK-1-cancel-pi_1", "order-SK-1-cancel-pi_1"]


def test_a_rejected_request_is_invalid_with_stripe_s_code(recorder, gateway):
    recorder.answer(
        "POST",
        "/v1/refunds",
        Answer(
            {"error": {"type": "invalid_request_error", "code": "amount_too_large"}},
            status=400,
        ),
    )

    with pytest.raises(PaymentRequestInvalid) as raised:
        gateway.create_refund(
            intent_id="pi_1", amount=USD_25, reason="other", metadata={}, idempotency_key="r-2"
        )

    assert raised.value.extra["stripe_code"] == "amount_too_large"


def event(event_id: str, event_type: str = "payment_intent.succeeded") -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": 1_700_000_300,
        "data": {"object": canned.intent(status="succeeded", amount_received=2500)},
    }


def test_list_events_asks_for_our_types_since_a_time_a_page_a_request(recorder, gateway):
    recorder.answer(
        "GET",
        "/v1/events",
        canned.page("/v1/events", event("evt_2"), has_more=True),
        canned.page("/v1/events", event("evt_1")),
    )
    types = ["refund.updated", "payment_intent.succeeded"]

    pages = gateway.list_events(created_gte=1_700_000_000, types=types)
    first = next(pages)
    assert len(recorder.requests) == 1
    rest = list(pages)

    assert [e.id for e in first] == ["evt_2"] and [e.id for e in rest[0]] == ["evt_1"]
    assert first[0].intent is not None and first[0].intent.status is IntentStatus.SUCCEEDED
    asked, then = recorder.requests
    expected = {
        "limit": "100",
        "created[gte]": "1700000000",
        "types[0]": "payment_intent.succeeded",
        "types[1]": "refund.updated",
    }
    assert (asked.method, asked.path, asked.form) == ("GET", "/v1/events", expected)
    assert then.form == {**expected, "starting_after": "evt_2"}
    assert {r.stripe_version for r in recorder.requests} == {STRIPE_API_VERSION}
    assert {r.idempotency_key for r in recorder.requests} == {None}


def test_list_events_asks_20_types_a_listing_at_most(recorder, gateway):
    types = [f"type.{n:02d}" for n in range(25)]

    assert list(gateway.list_events(created_gte=1_700_000_000, types=types)) == [[], []]

    first, second = recorder.requests
    assert [v for k, v in first.form.items() if k.startswith("types[")] == types[:20]
    assert [v for k, v in second.form.items() if k.startswith("types[")] == types[20:]


def test_a_listed_event_that_is_not_stripe_s_shape_is_left_out(recorder, gateway):
    broken = {**event("evt_bad"), "data": {"object": canned.intent(amount="lots")}}
    recorder.answer("GET", "/v1/events", canned.page("/v1/events", broken, event("evt_ok")))

    (page,) = gateway.list_events(created_gte=0, types=["payment_intent.succeeded"])

    assert [e.id for e in page] == ["evt_ok"]


class CountingLimiter:
    def __init__(self) -> None:
        self.turns: list[tuple[str, str]] = []

    def wait_turn(self, method: str, url: str, *, max_wait: float) -> bool:
        self.turns.append((method, url.split("?")[0]))
        return True

    def hold(self, method: str, url: str, seconds: float) -> None:
        pass


def test_every_page_of_events_waits_its_turn_at_the_shared_limiter(recorder):
    limiter = CountingLimiter()
    gateway = StripeGateway(
        secret_key="sk_test_recorder",
        webhook_secret="whsec_recorder",
        api_base=recorder.url,
        limiter=limiter,
    )
    recorder.answer(
        "GET",
        "/v1/events",
        canned.page("/v1/events", event("evt_2"), has_more=True),
        canned.page("/v1/events", event("evt_1")),
    )

    list(gateway.list_events(created_gte=0, types=["payment_intent.succeeded"]))

    assert limiter.turns == [("get", f"{recorder.url}/v1/events")] * 2
