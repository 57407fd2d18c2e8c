"""The whole money domain as a Hypothesis state machine, against the FakeGateway.

Random interleavings of checkout, card payments (paid or declined), manual capture (in full, in
part, or with a bad amount), refunds (partial, full, invalid amounts, Stripe's answer pending or
lost), refunds made in the Stripe Dashboard, refunds Stripe settles or fails later, disputes
opened and closed, cancellations, the customer's return page, reconciliation, shipments (all
or part, delivered), returns (asked, received with or without restock, refunded through the
refund engine with or without shipping, rejected), and webhooks:
every event Stripe sends is queued; events are delivered in order, or any of them again at any
time, so they arrive late, twice and out of order.

After every step, for every order:
- refunded <= captured <= authorised from the ledger, nothing negative;
- the stored payment status is the one the ledger proves (`payment_status_for`);
- the succeeded refunds add up to what the ledger says is refunded;
- every recorded move (audit before/after) is in the state tables, and every observed change of
  status is reachable through them;
- stock is never negative, and stock plus what orders still hold is what the shop started with;
- per line, returned (received back) <= asked back <= shipped <= ordered; a return's refund never
  exceeds what its received units are worth (plus the shipping, when it gives that back);
  shipments and returns only move along their tables; a closed order has nothing left to ship.
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
from shopkeeper.fulfilment.models import Shipment
from shopkeeper.fulfilment.services import deliver_shipment, ship_order
from shopkeeper.fulfilment.states import SHIPMENT_TRANSITIONS
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
from shopkeeper.returns.models import Return
from shopkeeper.returns.rules import REASONS, ReceivedLine, ReturnLineRequest
from shopkeeper.returns.services import receive_return, refund_return, reject_return, request_return
from shopkeeper.returns.states import RETURN_TRANSITIONS, ReturnStatus
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
    assert_fulfilment_adds_up,
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
        self.shipments_seen: dict[int, str] = {}
        self.returns_seen: dict[int, str] = {}
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

    @initialize(target=orders)
    def a_shipped_order_with_a_return_back(self) -> Any:
        """Shipped in full; two of three units came back (restocked), one return asked."""
        number = self.checkout(quantity=3, manual=False, then="pay_and_return")
        self.ship(number, quantity=None)
        received = request_return(
            order_number=number,
            lines=[ReturnLineRequest("MUG", 2, "damaged")],
            actor=self.staff,
        )
        receive_return(
            return_id=received.pk, lines=[ReceivedLine("MUG", 2, True)], actor=self.staff
        )
        self.ask_for_a_return(number, quantity=1, reason="wrong_item")
        return number

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

    # --- fulfilment and returns ---------------------------------------------------------
    @rule(number=orders, quantity=st.one_of(st.none(), st.integers(1, 3)))
    def ship(self, number: str, quantity: int | None) -> None:
        """Ship some units of the mug line, or (None) everything left to ship."""
        try:
            ship_order(
                order_number=number,
                actor=self.staff,
                lines=None if quantity is None else {"MUG": quantity},
                carrier="DHL",
                tracking_number=f"TRK{next(self.keys)}",
            )
        except DomainError as error:
            RUNS[f"ship refused: {error.code}"] += 1
            return
        RUNS["shipments"] += 1

    @precondition(lambda self: Shipment.objects.filter(status="shipped").exists())
    @rule(data=st.data())
    def confirm_a_delivery(self, data: st.DataObject) -> None:
        shipment = data.draw(
            st.sampled_from(list(Shipment.objects.select_related("order").order_by("id")))
        )
        deliver_shipment(
            order_number=shipment.order.number, shipment_id=shipment.pk, actor=self.staff
        )
        RUNS["deliveries confirmed"] += 1

    @precondition(lambda self: Shipment.objects.exists())
    @rule(number=orders, quantity=st.integers(1, 3), reason=st.sampled_from(REASONS))
    def ask_for_a_return(self, number: str, quantity: int, reason: str) -> None:
        try:
            request_return(
                order_number=number,
                lines=[ReturnLineRequest("MUG", quantity, reason)],
                actor=self.staff,
            )
        except DomainError as error:
            RUNS[f"return refused: {error.code}"] += 1
            return
        RUNS["returns asked"] += 1

    def _a_return(self, data: st.DataObject, status: ReturnStatus) -> Return | None:
        candidates = list(Return.objects.filter(status=status).order_by("id"))
        return data.draw(st.sampled_from(candidates)) if candidates else None

    @precondition(lambda self: Return.objects.filter(status="requested").exists())
    @rule(data=st.data(), fewer=st.sampled_from([0, 0, 0, 1, 2]), restock=st.booleans())
    def receive_a_return(self, data: st.DataObject, fewer: int, restock: bool) -> None:
        """The parcel arrives, sometimes with fewer units than were asked back."""
        returned = self._a_return(data, ReturnStatus.REQUESTED)
        if returned is None:
            return
        asked = returned.lines.get().quantity
        receive_return(
            return_id=returned.pk,
            lines=[ReceivedLine("MUG", max(asked - fewer, 0), restock)],
            actor=self.staff,
        )
        RUNS["returns received"] += 1

    @precondition(lambda self: Return.objects.filter(status="received").exists())
    @rule(
        data=st.data(),
        include_shipping=st.booleans(),
        stripe=st.sampled_from(["succeeded", "pending"]),
    )
    def refund_a_return(self, data: st.DataObject, include_shipping: bool, stripe: str) -> None:
        returned = self._a_return(data, ReturnStatus.RECEIVED)
        if returned is None:
            return
        self.gateway.refund_status = stripe
        try:
            refund = refund_return(
                return_id=returned.pk, include_shipping=include_shipping, actor=self.staff
            )
        except DomainError as error:
            RUNS[f"return refund refused: {error.code}"] += 1
            return
        RUNS[f"return refund {refund.status}"] += 1
        for snapshot in list(self.gateway.refunds.values()):
            if snapshot.metadata.get("refund_key") == str(refund.key):
                self.send(snapshot, "refund.created")

    @precondition(lambda self: Return.objects.filter(status__in=("requested", "received")).exists())
    @rule(data=st.data(), received=st.booleans())
    def reject_a_return(self, data: st.DataObject, received: bool) -> None:
        returned = self._a_return(
            data, ReturnStatus.RECEIVED if received else ReturnStatus.REQUESTED
        )
        if returned is None:
            return
        try:
            reject_return(return_id=returned.pk, note="not as described", actor=self.staff)
        except DomainError as error:
            RUNS[f"return rejection refused: {error.code}"] += 1
            return
        RUNS["returns rejected"] += 1

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

    @invariant()
    def fulfilment_and_returns_add_up(self) -> None:
        for order in Order.objects.all():
            assert_fulfilment_adds_up(order)
        for shipment_id, status in Shipment.objects.values_list("id", "status"):
            before = self.shipments_seen.get(shipment_id)
            assert before is None or reachable(SHIPMENT_TRANSITIONS, before, status)
            self.shipments_seen[shipment_id] = status
        for return_id, status in Return.objects.values_list("id", "status"):
            before = self.returns_seen.get(return_id)
            assert before is None or reachable(RETURN_TRANSITIONS, before, status)
            self.returns_seen[return_id] = status


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
