"""The fault matrix: each Stripe fault during a refund, and what our retries and reconciliation
(`reconcile --fix`) make of it. Whatever the fault, Stripe ends with exactly one refund and our
ledger equals it.

The refund goes to localstripe through the fault proxy (tests/faults/proxy.py), which plays
Stripe's idempotency layer (except for a stall: see proxy.py). The SDK never retries
(`max_network_retries=0`): our retry (same idempotency key, SHOPKEEPER_REFUND_RETRY_DELAYS) is the
one layer. It resends at once only a send that certainly ended; one that may still be in flight
(timed out, answer lost) is left pending until its in-flight window is over.

fault          | at Stripe | one fault          | whole request        | after reconcile
500            | no        | succeeded, 2 tries | pending, 3 tries     | resent once: succeeded
429            | no        | succeeded, 2 tries | pending, 3 tries     | resent once: succeeded
dropped answer | yes       | pending, 1 try     | pending, 1 there     | found by key: succeeded
delayed answer | yes       | pending, 1 try     | pending, 1 there     | found by key: succeeded
refused        | no        | -                  | pending, 3 tries     | resent once: succeeded
stall, then every queued request answered | 1 | pending, 1 try | -    | found by key: succeeded

Reconciliation while Stripe is still unreachable says so (exit status 2) and changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.stripe.emulator import EmulatorGateway
from shopkeeper.reconciliation.services import reconcile
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.services import request_refund
from tests.factories import paid_order, staff, token_for
from tests.faults.proxy import CLIENT_TIMEOUT, Fault, StripeFaultProxy
from tests.integration.refund_fixtures import Api

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db]

TIMEOUT = CLIENT_TIMEOUT  # the client's; the tier's proxy holds a delayed answer past it
ENDED = [Fault.ERROR_500, Fault.RATE_LIMIT]  # answered: the send certainly ended
IN_FLIGHT = [Fault.DROP_RESPONSE, Fault.DELAY]  # no answer: the send may still be executing
REFUSED = "refused"  # no listener on the port: not a request the proxy can answer
# Does the refund exist at Stripe while every answer is lost?
MADE_AT_STRIPE = {
    Fault.ERROR_500: False,
    Fault.RATE_LIMIT: False,
    Fault.DROP_RESPONSE: True,
    Fault.DELAY: True,
    REFUSED: False,
}


@pytest.fixture
def gateway(proxy) -> EmulatorGateway:
    """The application's gateway, talking to Stripe through the proxy."""
    return EmulatorGateway(
        secret_key="sk_test_faults",
        webhook_secret="whsec_faults",
        api_base=proxy.url,
        timeout=TIMEOUT,
        rate_limit_max_wait=TIMEOUT,  # a 429 is sent again after 0.5 s, once
    )


@pytest.fixture
def order(localstripe_gateway) -> Order:
    return paid_order(localstripe_gateway)  # 25.00 USD, paid at localstripe


def reconcile_fix(gateway: EmulatorGateway, order: Order) -> None:
    """`shopkeeper reconcile --fix --order N`, with no grace for refunds just sent."""
    report = reconcile(order_number=order.number, fix=True, gateway=gateway, in_flight=timedelta(0))
    assert (report.remaining, report.unreachable) == ([], []), report.as_text()


def refunds_at_stripe(localstripe_gateway, order: Order) -> list:
    """Asked of localstripe directly, past the proxy."""
    return localstripe_gateway.list_refunds(order.payments.get().intent_id)


def assert_ledger_equals_stripe(localstripe_gateway, order: Order) -> None:
    at_stripe = {
        r.id: r.amount
        for r in refunds_at_stripe(localstripe_gateway, order)
        if r.status == "succeeded"
    }
    ours = dict(
        LedgerEntry.objects.filter(order=order, kind="refund").values_list(
            "external_id", "amount_minor"
        )
    )
    assert ours == at_stripe


def refund_with(fault: Fault | str, proxy: StripeFaultProxy, times: int, **request) -> Refund:
    if fault == REFUSED:
        with proxy.refusing():
            return request_refund(**request)
    proxy.inject(Fault(fault), times=times)
    return request_refund(**request)


@pytest.mark.parametrize("fault", ENDED)
def test_given_one_fault_when_refunding_then_our_retry_with_the_same_key_makes_one_refund(
    fault, proxy, gateway, order, manager, localstripe_gateway
):
    refund = refund_with(
        fault,
        proxy,
        1,
        order_number=order.number,
        actor=manager,
        amount="6.00",
        reason="other",
        gateway=gateway,
    )

    # A 429 is no failure: the paced HTTP client sends it again itself, no retry of ours.
    attempts = 1 if fault == Fault.RATE_LIMIT else 2
    assert (refund.status, refund.attempts) == ("succeeded", attempts)
    (at_stripe,) = refunds_at_stripe(localstripe_gateway, order)
    assert (at_stripe.id, at_stripe.amount) == (refund.stripe_refund_id, 600)
    assert proxy.count("forwarded") == 1  # localstripe was asked once
    assert_ledger_equals_stripe(localstripe_gateway, order)


@pytest.mark.parametrize("fault", IN_FLIGHT)
def test_given_one_answer_lost_when_refunding_then_not_resent_while_in_flight_and_found_by_key(
    fault, proxy, gateway, order, manager, localstripe_gateway
):
    refund = refund_with(
        fault,
        proxy,
        1,
        order_number=order.number,
        actor=manager,
        amount="6.00",
        reason="other",
        gateway=gateway,
    )
    early = reconcile(order_number=order.number, fix=True, gateway=gateway)

    assert (refund.status, refund.attempts, early.in_flight) == ("pending", 1, 1)
    assert proxy.count() == 1  # neither our retry nor reconciliation sent it again
    reconcile_fix(gateway, order)  # the window over: found at Stripe by its key
    refund.refresh_from_db()
    (at_stripe,) = refunds_at_stripe(localstripe_gateway, order)
    assert (refund.status, refund.stripe_refund_id) == ("succeeded", at_stripe.id)
    assert proxy.count("forwarded") == 1
    assert_ledger_equals_stripe(localstripe_gateway, order)


@pytest.mark.parametrize("fault", [*ENDED, *IN_FLIGHT, REFUSED])
def test_given_stripe_faulty_for_the_whole_request_then_pending_and_reconcile_makes_one_refund(
    fault, proxy, gateway, order, manager, localstripe_gateway
):
    refund = refund_with(
        fault,
        proxy,
        1000,
        order_number=order.number,
        actor=manager,
        amount="6.00",
        reason="other",
        gateway=gateway,
    )

    # Immediately: unknown is not failure. Pending, nothing in the ledger, and why is audited.
    assert (refund.status, refund.attempts) == ("pending", 1 if fault in IN_FLIGHT else 3)
    assert not LedgerEntry.objects.filter(order=order, kind="refund").exists()
    assert AuditEntry.objects.filter(action="order.refund.outcome_unknown").count() == 1
    made = refunds_at_stripe(localstripe_gateway, order)
    assert len(made) == (1 if MADE_AT_STRIPE[fault] else 0)

    proxy.clear_faults()  # Stripe is well again
    reconcile_fix(gateway, order)
    reconcile_fix(gateway, order)  # idempotent

    refund.refresh_from_db()
    (at_stripe,) = refunds_at_stripe(localstripe_gateway, order)
    assert refund.status == "succeeded" and refund.stripe_refund_id == at_stripe.id
    assert made in ([], [at_stripe])  # the one made during the fault is the one kept
    assert_ledger_equals_stripe(localstripe_gateway, order)
    assert Order.objects.get(pk=order.pk).payment_status == "partially_refunded"


def test_given_api_refund_while_answers_are_lost_then_201_pending_and_reconcile_settles_it(
    proxy, gateway, order, localstripe_gateway
):
    from shopkeeper.payments.provider import use_gateway

    api = Api(token_for(staff("owner")))
    proxy.inject(Fault.DROP_RESPONSE, times=1000)
    with use_gateway(gateway):
        response = api.refund(order.number, {"amount": "2.50", "reason": "other"}, key="k-1")
        again = api.refund(order.number, {"amount": "2.50", "reason": "other"}, key="k-1")

    assert response.status_code == 201 and response.json()["refund"]["status"] == "pending"
    assert again.json() == response.json()  # our own idempotency: not a second refund
    assert len(refunds_at_stripe(localstripe_gateway, order)) == 1

    proxy.clear_faults()
    reconcile_fix(gateway, order)

    (at_stripe,) = refunds_at_stripe(localstripe_gateway, order)
    assert Refund.objects.get(order=order).stripe_refund_id == at_stripe.id
    assert_ledger_equals_stripe(localstripe_gateway, order)


def test_given_stripe_still_down_when_reconciling_then_it_says_so_and_changes_nothing(
    proxy, gateway, order, manager, localstripe_gateway
):
    with proxy.refusing():
        refund = request_refund(
            order_number=order.number, actor=manager, amount="6.00", reason="other", gateway=gateway
        )
        report = reconcile(
            order_number=order.number, fix=True, gateway=gateway, in_flight=timedelta(0)
        )

    assert report.unreachable and report.exit_code == 2
    refund.refresh_from_db()
    assert refund.status == "pending"
    assert refunds_at_stripe(localstripe_gateway, order) == []

    reconcile_fix(gateway, order)  # Stripe is back

    (at_stripe,) = refunds_at_stripe(localstripe_gateway, order)
    assert Refund.objects.get(pk=refund.pk).stripe_refund_id == at_stripe.id
    assert_ledger_equals_stripe(localstripe_gateway, order)


def test_given_stripe_stalled_past_our_timeout_when_it_answers_every_queued_request_then_one_refund(
    proxy, order, manager, localstripe_gateway
):
    """The row "Stripe stalls past our timeout, then answers every queued request".

    The gateway is the application's own, SDK retries as configured: one retry layer. A send
    that timed out may still be queued at Stripe, so nothing sends it again while it may be in
    flight; the emulator executes every request it received, whatever its key.
    """
    gateway = EmulatorGateway(
        secret_key="sk_test_faults",
        webhook_secret="whsec_faults",
        api_base=proxy.url,
        timeout=TIMEOUT,
    )
    proxy.inject(Fault.STALL, times=1000)

    refund = request_refund(
        order_number=order.number, actor=manager, amount="5.00", reason="other", gateway=gateway
    )
    # A reconcile run while the send may still be in flight leaves it alone.
    report = reconcile(order_number=order.number, fix=True, gateway=gateway)
    held = proxy.resume()  # Stripe wakes up and executes every request that reached it

    assert refund.status == "pending" and report.in_flight == 1
    assert held == 1 and len(refunds_at_stripe(localstripe_gateway, order)) == 1
    reconcile_fix(gateway, order)  # the in-flight window over: found by its key, not resent
    (at_stripe,) = refunds_at_stripe(localstripe_gateway, order)
    refund.refresh_from_db()
    assert (refund.status, refund.stripe_refund_id, at_stripe.amount) == (
        "succeeded",
        at_stripe.id,
        500,
    )
    assert_ledger_equals_stripe(localstripe_gateway, order)
