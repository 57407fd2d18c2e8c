"""One retry layer, ours: the SDK never retries, and the gateway resends a keyed write only when
the earlier send certainly ended. A send that may still be in flight is never sent again here.
A 429 is no failure: the paced HTTP client sends it again after what Stripe asks, without
taking the gateway's retries, unless Stripe says not to (payments/stripe/paced_http.py).

Through the fault proxy (tests/faults/proxy.py) to localstripe, with the application's gateway.
"""

from __future__ import annotations

import pytest

from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.money import Money
from shopkeeper.payments.stripe.emulator import EmulatorGateway
from tests.faults.proxy import CLIENT_TIMEOUT, Fault

pytestmark = pytest.mark.localstripe

TIMEOUT = CLIENT_TIMEOUT  # the client's; the tier's proxy holds a delayed answer past it
INTENTS = "/v1/payment_intents"


@pytest.fixture
def gateway(proxy) -> EmulatorGateway:
    return EmulatorGateway(
        secret_key="sk_test_retries",
        webhook_secret="whsec_retries",
        api_base=proxy.url,
        timeout=TIMEOUT,
        retry_delays=(0.05,),
        rate_limit_max_wait=5.0,
    )


def create_intent(gateway: EmulatorGateway, key: str):
    return gateway.create_payment_intent(
        amount=Money(1500, "USD"),
        order_number="SK-R1",
        capture_method="manual",
        idempotency_key=key,
    )


@pytest.mark.parametrize("fault", [Fault.ERROR_500, Fault.RATE_LIMIT])
def test_given_an_answered_failure_when_creating_a_payment_then_resent_once_with_the_same_key(
    fault, proxy, gateway
):
    proxy.inject(fault, times=1, path=INTENTS)

    intent = create_intent(gateway, "pi-retry-1")

    assert intent.id.startswith("pi_")
    assert proxy.count(path=INTENTS) == 2 and proxy.count("forwarded", path=INTENTS) == 1
    assert {e.key for e in proxy.exchanges if e.path.startswith(INTENTS)} == {"pi-retry-1"}


@pytest.mark.parametrize("fault", [Fault.DELAY, Fault.DROP_RESPONSE])
def test_given_no_answer_when_creating_a_payment_then_in_flight_and_never_resent(
    fault, proxy, gateway
):
    proxy.inject(fault, times=1, path=INTENTS)

    with pytest.raises(PaymentOutcomeUnknown) as unknown:
        create_intent(gateway, "pi-retry-2")

    assert unknown.value.in_flight
    assert proxy.count(path=INTENTS) == 1  # neither the SDK nor we sent it again


def test_given_no_answer_to_a_read_then_it_is_read_again(proxy, gateway):
    intent = create_intent(gateway, "pi-retry-3")
    proxy.inject(Fault.DELAY, times=1, method="GET", path=INTENTS)

    assert gateway.retrieve_payment_intent(intent.id).id == intent.id
    assert proxy.count(method="GET", path=INTENTS) == 2


def test_given_a_refused_connection_then_the_send_certainly_ended(proxy, gateway):
    with proxy.refusing(), pytest.raises(PaymentOutcomeUnknown) as unknown:
        gateway.create_refund(
            intent_id="pi_x",
            amount=Money(100, "USD"),
            reason="other",
            metadata={},
            idempotency_key="refund-refused",
        )

    assert not unknown.value.in_flight


def test_given_an_answered_500_to_a_refund_then_the_gateway_itself_sends_it_once(proxy, gateway):
    """Refunds are retried by refunds.services alone, which knows their in-flight window."""
    proxy.inject(Fault.ERROR_500, times=1)

    with pytest.raises(PaymentOutcomeUnknown) as unknown:
        gateway.create_refund(
            intent_id="pi_x",
            amount=Money(100, "USD"),
            reason="other",
            metadata={},
            idempotency_key="refund-once",
        )

    assert not unknown.value.in_flight and proxy.count() == 1


def test_given_429s_with_retry_after_then_sent_again_after_it_without_taking_a_failure_retry(
    proxy, gateway
):
    """Two 429s, one retry for failures (retry_delays=(0.05,)): still made, Retry-After apart."""
    proxy.inject(Fault.RATE_LIMIT, times=2, path=INTENTS, headers=(("Retry-After", "1"),))

    intent = create_intent(gateway, "pi-429-after")

    assert intent.id.startswith("pi_")
    sent = [e for e in proxy.exchanges if e.path.startswith(INTENTS)]
    assert [e.outcome for e in sent] == ["not_forwarded", "not_forwarded", "forwarded"]
    assert {e.key for e in sent} == {"pi-429-after"}
    assert sent[1].at - sent[0].at >= 0.95 and sent[2].at - sent[1].at >= 0.95


def test_given_a_429_saying_stripe_should_not_retry_then_never_sent_again_and_not_in_flight(
    proxy, gateway
):
    proxy.inject(
        Fault.RATE_LIMIT, times=1, path=INTENTS, headers=(("Stripe-Should-Retry", "false"),)
    )

    with pytest.raises(PaymentOutcomeUnknown) as unknown:
        create_intent(gateway, "pi-429-no-retry")

    assert not unknown.value.in_flight  # Stripe did not execute it: certainly not done
    assert proxy.count(path=INTENTS) == 1  # neither the HTTP client nor the gateway resent it
