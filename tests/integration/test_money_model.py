"""The whole money domain as a Hypothesis state machine, against the FakeGateway.

Random interleavings of checkout, card payments (paid or declined), manual capture (in full, in
part, or with a bad amount), refunds (partial, full, invalid amounts, Stripe's answer pending or
lost), refunds made in the Stripe Dashboard, refunds Stripe settles or fails later, disputes
opened and closed, cancellations, the customer's return page, reconciliation, and webhooks:
every event Stripe sends is queued; events are delivered in order, or any of them again at any
time, so they arrive late, twice and out of order.

After every step, for every order:
- refunded <= captured <= authorised from the ledger, nothing negative;
- the stored payment status is the one the ledger proves (`payment_status_for`);
- the succeeded refunds add up to what the ledger says is refunded;
- every recorded move (audit before/after) is in the state tables, and every observed change of
  status is reachable through them;
- stock is never negative, and stock plus what orders still hold is what the shop started with.
Whenever all of Stripe's news has arrived and `reconcile --fix` has run, reconciliation finds
nothing left and the ledger equals Stripe: captured, refunded and held by disputes, and what is
refunded and held by disputes together is within what was captured.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, deque
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Sum
from django.test import Client, override_settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import create_product
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.errors import DomainError, PaymentDeclined, PaymentRequestInvalid
from shopkeeper.orders.models import Order
from shopkeeper.orders.services import cancel_order, capture_order
from shopkeeper.orders.states import ORDER_TRANSITIONS
from shopkeeper.payments.ledger import payment_status_for
from shopkeeper.payments.models import Payment
from shopkeeper.payments.provider import use_gateway
from shopkeeper.payments.selectors import order_balance
from shopkeeper.payments.services import sync_from_stripe
from shopkeeper.payments.states import PAYMENT_TRANSITIONS
from shopkeeper.reconciliation.services import reconcile
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.services import request_refund
from tests.factories import ADDRESS, staff
from tests.fakes import (
    FakeGateway,
    dispute_event_payload,
    intent_event_payload,
    refund_event_payload,
    sign_payload,
)
from tests.integration.money_model_checks import (
    AMOUNTS,
    LostAnswers,
    assert_audited_move_allowed,
    held_by_disputes,
    intents_of,
    reachable,
    refunds_at_stripe,
)

pytestmark = pytest.mark.django_db

STOCK = 30
MAX_EXAMPLES = 40
STEPS = 40
RUNS: Counter[str] = Counter()  # what the examples did, printed at the end


class MoneyDomain(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        RUNS["examples"] += 1
        # Each example in a savepoint, rolled back in teardown: examples never see each other.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.gateway = FakeGateway()
        self._gateway_in_use = use_gateway(self.gateway)
        self._gateway_in_use.__enter__()
        self.staff = staff("manager")
        self.product = create_product(
            sku="MUG", name="Mug", price="10.00", currency="USD", stock=STOCK
        )
        self.client = Client()
        self.sent: list[bytes] = []  # every event Stripe sent
        self.queue: deque[bytes] = deque()  # those not delivered yet
        self.event_ids = itertools.count(1)
        self.keys = itertools.count(1)
        self.observed: dict[str, tuple[str, str]] = {}
        self.audit_seen = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first()

    def teardown(self) -> None:
        self._gateway_in_use.__exit__(None, None, None)
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- Stripe's news ----------------------------------------------------------------
    def send(self, obj: Any, event_type: str, *, now: bool = False) -> None:
        """Stripe sends an event about `obj` as it is now; delivered later unless `now`."""
        event_id = f"evt_model_{next(self.event_ids)}"
        if event_type.startswith("payment_intent."):
            payload = intent_event_payload(obj, event_type, event_id)
        elif event_type.startswith("refund."):
            payload = refund_event_payload(obj, event_type, event_id)
        else:
            payload = dispute_event_payload(obj, event_type, event_id)
        self.sent.append(payload)
        if now:
            self.deliver(payload)
        else:
            self.queue.append(payload)

    def deliver(self, payload: bytes) -> None:
        RUNS["deliveries"] += 1
        response = self.client.post(
            "/webhooks/stripe",
            payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign_payload(payload),
        )
        assert response.status_code == 200, (json.loads(payload)["type"], response.content)

    def intent_of(self, number: str) -> str:
        payment = Payment.objects.filter(order__number=number).order_by("-id").first()
        assert payment is not None
        return payment.intent_id

    # --- the customer -----------------------------------------------------------------
    @initialize(target=orders)
    def a_paid_order(self) -> Any:
        return self.checkout(quantity=2, manual=False, then="pay_and_return")

    @initialize(target=orders)
    def an_authorised_order(self) -> Any:
        return self.checkout(quantity=1, manual=True, then="pay_and_return")

    @rule(
        target=orders,
        quantity=st.integers(1, 3),
        manual=st.booleans(),
        then=st.sampled_from(["leave", "pay", "pay_and_return", "decline"]),
    )
    def checkout(self, quantity: int, manual: bool, then: str) -> Any:
        """Place an order; the customer may pay (and come back to the shop) at once."""
        with override_settings(SHOPKEEPER_CAPTURE="manual" if manual else "automatic"):
            try:
                placed = place_order(
                    email="ada@example.com",
                    items=[BasketItem("MUG", quantity)],
                    shipping_address=ADDRESS,
                )
            except DomainError as error:  # out of stock
                RUNS[f"checkout refused: {error.code}"] += 1
                return multiple()
        RUNS["orders"] += 1
        number = placed.order.number
        if then != "leave":
            self.pay(number, decline=then == "decline", come_back=then == "pay_and_return")
        return number

    @rule(number=orders, decline=st.booleans(), come_back=st.booleans())
    def pay(self, number: str, decline: bool, come_back: bool) -> None:
        intent_id = self.intent_of(number)
        method = "pm_card_chargeCustomerFail" if decline else "pm_card_visa"
        try:
            intent = self.gateway.confirm_payment_intent(
                intent_id, payment_method=method, idempotency_key=f"confirm-{next(self.keys)}"
            )
        except PaymentDeclined:
            RUNS["payments declined"] += 1
            self.send(self.gateway.intents[intent_id], "payment_intent.payment_failed")
            return
        except PaymentRequestInvalid:
            return  # no longer payable (paid, captured or cancelled): Stripe says no
        RUNS["payments"] += 1
        authorised = intent.status == "requires_capture"
        self.send(
            intent,
            "payment_intent.amount_capturable_updated"
            if authorised
            else "payment_intent.succeeded",
        )
        if come_back:
            self.return_page(number)

    @rule(number=orders)
    def return_page(self, number: str) -> None:
        sync_from_stripe(self.intent_of(number))

    # --- staff ------------------------------------------------------------------------
    @precondition(lambda self: Order.objects.filter(payment_status="authorized").exists())
    @rule(number=orders, amount=AMOUNTS)
    def capture(self, number: str, amount: str | None) -> None:
        try:
            capture_order(order_number=number, amount=amount, actor=self.staff)
        except DomainError as error:
            RUNS[f"capture refused: {error.code}"] += 1
            return
        RUNS["captures"] += 1
        self.send(self.gateway.intents[self.intent_of(number)], "payment_intent.succeeded")

    @rule(
        number=orders,
        amount=AMOUNTS,
        stripe=st.sampled_from(["succeeded", "pending", "answer_lost", "never_arrived"]),
    )
    def refund(self, number: str, amount: str | None, stripe: str) -> None:
        """Staff refund; Stripe answers succeeded or pending, or its answer is lost."""
        self.gateway.refund_status = "pending" if stripe == "pending" else "succeeded"
        gateway = None
        if stripe in ("answer_lost", "never_arrived"):
            gateway = LostAnswers(self.gateway, made=stripe == "answer_lost")
        try:
            refund = request_refund(
                order_number=number,
                actor=self.staff,
                reason="requested_by_customer",
                amount=amount,
                gateway=gateway,  # type: ignore[arg-type]
            )
        except DomainError as error:
            RUNS[f"refund refused: {error.code}"] += 1
            return
        RUNS[f"refund {refund.status}"] += 1
        for snapshot in list(self.gateway.refunds.values()):
            if snapshot.metadata.get("refund_key") == str(refund.key):
                self.send(snapshot, "refund.created")

    @rule(number=orders)
    def cancel(self, number: str) -> None:
        try:
            cancel_order(order_number=number, reason="changed their mind", actor=self.staff)
        except DomainError as error:
            RUNS[f"cancel refused: {error.code}"] += 1
            return
        RUNS["cancels"] += 1
        for payment in Payment.objects.filter(order__number=number):
            if self.gateway.intents[payment.intent_id].status == "canceled":
                self.send(self.gateway.intents[payment.intent_id], "payment_intent.canceled")

    @rule()
    def reconcile_fix(self) -> None:
        report = reconcile(fix=True, in_flight=timedelta(0))
        RUNS["reconciliations"] += 1
        RUNS["differences fixed by reconcile"] += len(report.fixed)

    # --- Stripe, on its own -----------------------------------------------------------
    @precondition(
        lambda self: any(
            r.status in ("pending", "succeeded") for r in self.gateway.refunds.values()
        )
    )
    @rule(data=st.data(), outcome=st.sampled_from(["succeeded", "failed"]), now=st.booleans())
    def stripe_settles_a_refund(self, data: st.DataObject, outcome: str, now: bool) -> None:
        """A pending refund succeeds or fails; a succeeded one can still fail (a closed card)."""
        allowed = ("pending",) if outcome == "succeeded" else ("pending", "succeeded")
        candidates = sorted(r.id for r in self.gateway.refunds.values() if r.status in allowed)
        if not candidates:
            return
        refund_id = data.draw(st.sampled_from(candidates))
        reason = "expired_or_canceled_card" if outcome == "failed" else ""
        RUNS[f"Stripe refund {self.gateway.refunds[refund_id].status} -> {outcome}"] += 1
        settled = self.gateway.settle_refund(refund_id, outcome, failure_reason=reason)
        self.send(settled, "refund.failed" if outcome == "failed" else "refund.updated", now=now)

    @rule(number=orders, percent=st.integers(1, 100), now=st.booleans())
    def refund_in_the_stripe_dashboard(self, number: str, percent: int, now: bool) -> None:
        intent = self.gateway.intents[self.intent_of(number)]
        left = self._left_at_stripe(intent)
        if intent.status != "succeeded" or left <= 0:
            return  # the dashboard would refuse
        refund = self.gateway.refund_outside(intent.id, max(1, left * percent // 100))
        RUNS["dashboard refunds"] += 1
        self.send(refund, "refund.created", now=now)

    @rule(number=orders, percent=st.integers(1, 100), then=st.sampled_from(["open", "won", "lost"]))
    def the_bank_disputes_the_charge(self, number: str, percent: int, then: str) -> None:
        """A dispute opens on the charge, or the open one is won or lost."""
        intent = self.gateway.intents[self.intent_of(number)]
        disputes = self.gateway.list_disputes(intent.id)
        if then == "open":
            left = self._left_at_stripe(intent)
            if intent.status != "succeeded" or left <= 0 or disputes:
                return
            dispute = self.gateway.dispute(intent.id, max(1, left * percent // 100))
            self.send(dispute, "charge.dispute.created")
        elif disputes and disputes[0].status == "needs_response":
            dispute = self.gateway.dispute(intent.id, disputes[0].amount, status=then)
            self.send(dispute, "charge.dispute.closed")
        else:
            return
        RUNS[f"disputes {then}"] += 1

    def _left_at_stripe(self, intent: Any) -> int:
        """What Stripe still lets go: captured less refunds and disputes (not lost)."""
        taken = sum(
            r.amount
            for r in self.gateway.list_refunds(intent.id)
            if r.status in ("pending", "succeeded")
        )
        disputed = sum(d.amount for d in self.gateway.list_disputes(intent.id))
        return intent.amount_received - taken - disputed

    # --- webhook deliveries -----------------------------------------------------------
    @precondition(lambda self: self.sent)
    @rule(data=st.data(), early_or_again=st.booleans())
    def deliver_an_event(self, data: st.DataObject, early_or_again: bool) -> None:
        """The next event in line, or any event Stripe sent: again, or ahead of its turn."""
        if self.queue and not early_or_again:
            self.deliver(self.queue.popleft())
        else:
            self.deliver(data.draw(st.sampled_from(self.sent)))

    @rule()
    def all_news_arrives_then_the_ledger_equals_stripe(self) -> None:
        RUNS["full agreements checked"] += 1
        while self.queue:
            self.deliver(self.queue.popleft())
        report = reconcile(fix=True, in_flight=timedelta(0))
        assert (report.remaining, report.unreachable) == ([], []), report.as_text()
        for order in Order.objects.all():
            balance = order_balance(order)
            stripe = refunds_at_stripe(self.gateway, order)
            captured = sum(
                i.amount_received
                for i in intents_of(self.gateway, order)
                if i.status == "succeeded"
            )
            refunded = sum(r.amount for r in stripe if r.status == "succeeded")
            held = held_by_disputes(self.gateway, order)
            assert (balance.captured, balance.refunded, balance.disputed) == (
                captured,
                refunded,
                held,
            ), order.number
            # Only once all news is in: a dispute opened and won before we heard of it, then a
            # refund of the money it freed, can meanwhile show as held and refunded both.
            assert balance.refunded + balance.disputed <= balance.captured, order.number
            pending_there = [r.id for r in stripe if r.status == "pending"]
            pending_here = Refund.objects.filter(order=order, status="pending")
            assert not pending_here.exclude(stripe_refund_id__in=pending_there).exists()

    # --- invariants -------------------------------------------------------------------
    @invariant()
    def the_ledger_proves_every_balance_and_status(self) -> None:
        for order in Order.objects.all():
            balance = order_balance(order)
            assert balance.refunded >= 0, order.number
            assert balance.refunded <= balance.captured <= balance.authorized, (
                order.number,
                balance,
            )
            assert balance.released <= balance.authorized
            assert payment_status_for(balance, order.payment_status) == order.payment_status
            succeeded = Refund.objects.filter(order=order, status="succeeded").aggregate(
                total=Sum("amount_minor")
            )["total"]
            assert (succeeded or 0) == balance.refunded, order.number

    @invariant()
    def statuses_only_move_along_the_tables(self) -> None:
        for number, status, payment_status in Order.objects.values_list(
            "number", "status", "payment_status"
        ):
            before = self.observed.get(number)
            if before is not None:
                assert reachable(ORDER_TRANSITIONS, before[0], status), (before, status)
                assert reachable(PAYMENT_TRANSITIONS, before[1], payment_status), (
                    before,
                    payment_status,
                )
            self.observed[number] = (status, payment_status)
        entries = AuditEntry.objects.order_by("id")
        if self.audit_seen is not None:
            entries = entries.filter(id__gt=self.audit_seen)
        for entry in entries:
            self.audit_seen = entry.id
            assert_audited_move_allowed(entry)

    @invariant()
    def stock_is_never_negative_and_adds_up(self) -> None:
        stock = Product.objects.get(pk=self.product.pk).stock
        held = sum(
            line.quantity - line.restocked_quantity
            for order in Order.objects.prefetch_related("lines")
            for line in order.lines.all()
        )
        assert stock >= 0
        assert stock + held == STOCK


def test_the_money_domain_keeps_its_invariants_under_random_interleavings(capsys):
    RUNS.clear()
    run_state_machine_as_test(
        MoneyDomain,
        settings=hypothesis_settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    with capsys.disabled():
        print(f"\nmoney model: {dict(sorted(RUNS.items()))}")
    assert RUNS["examples"] >= MAX_EXAMPLES
