"""A fake payment gateway: the port swapped for an in-memory Stripe with Stripe's money rules."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shopkeeper.errors import (
    PaymentDeclined,
    PaymentOutcomeUnknown,
    PaymentRequestInvalid,
    WebhookSignatureInvalid,
)
from shopkeeper.money import Money
from shopkeeper.payments.gateway import (
    ChargeSnapshot,
    DisputeSnapshot,
    GatewayEvent,
    IntentSnapshot,
    RefundSnapshot,
)

WEBHOOK_SECRET = "whsec_shopkeeper_offline"
# Payment methods the fake declines, like Stripe's test methods of the same names.
DECLINING_METHODS = frozenset({"pm_card_chargeCustomerFail", "pm_card_visa_chargeDeclined"})
PAGE_SIZE = 100  # Stripe's largest list page


def sign_payload(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value for `payload`, as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@dataclass
class FakeGateway:
    """Keeps PaymentIntents and refunds in memory and honours idempotency keys like Stripe.

    `fail_next` queues errors to raise on the next calls (by operation name), and
    `lose_next_response` makes the next call take effect but raise an unknown outcome.
    """

    intents: dict[str, IntentSnapshot] = field(default_factory=dict)
    refunds: dict[str, RefundSnapshot] = field(default_factory=dict)
    disputes: dict[str, DisputeSnapshot] = field(default_factory=dict)
    # Stripe's Events API: what `add_event` put there (webhooks delivered or not).
    events: list[GatewayEvent] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_next: dict[str, list[Exception]] = field(default_factory=dict)
    lose_next_response: set[str] = field(default_factory=set)
    refund_status: str = "succeeded"
    # Like localstripe: no money rules (over-refunds pass), and a capture and a cancel of one
    # PaymentIntent are both accepted, in either order.
    permissive: bool = False
    _replies: dict[str, Any] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    # Requests from concurrent threads (race tests) are served one at a time, as Stripe would.
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def _idempotent(self, operation: str, key: str, make: Any) -> Any:
        with self._lock:
            self.calls.append((operation, key))
            queued = self.fail_next.get(operation)
            if queued:
                raise queued.pop(0)
            if key not in self._replies:
                self._replies[key] = make()
            if operation in self.lose_next_response:
                self.lose_next_response.discard(operation)
                raise PaymentOutcomeUnknown("response lost")
            return self._replies[key]

    # --- PaymentIntents -------------------------------------------------------------
    def create_payment_intent(
        self, *, amount: Money, order_number: str, capture_method: str, idempotency_key: str
    ) -> IntentSnapshot:
        def make() -> IntentSnapshot:
            intent_id = self._next_id("pi")
            intent = IntentSnapshot(
                id=intent_id,
                status="requires_payment_method",
                amount=amount.minor,
                currency=amount.currency,
                capture_method=capture_method,
                client_secret=f"{intent_id}_secret_fake",
                order_number=order_number,
                created=int(time.time()),
            )
            self.intents[intent_id] = intent
            return intent

        return self._idempotent("create_payment_intent", idempotency_key, make)

    def pay(self, intent_id: str, *, decline: bool = False) -> IntentSnapshot:
        """What the customer's browser does: confirm the PaymentIntent with a card."""
        intent = self.intents[intent_id]
        if decline:
            intent = replace(intent, status="requires_payment_method", last_error="Card declined")
        elif intent.capture_method == "manual":
            # Stripe clears last_payment_error once a later confirmation succeeds.
            intent = replace(
                intent, status="requires_capture", amount_capturable=intent.amount, last_error=""
            )
        else:
            intent = replace(
                intent,
                status="succeeded",
                amount_received=intent.amount,
                charge_id=self._next_id("ch"),
                card_brand="visa",
                card_last4="4242",
                last_error="",
            )
        self.intents[intent_id] = intent
        return intent

    def confirm_payment_intent(
        self, intent_id: str, *, payment_method: str, idempotency_key: str
    ) -> IntentSnapshot:
        """Stripe's test payment methods: DECLINING_METHODS are declined, any other one pays."""

        def make() -> IntentSnapshot:
            intent = self.intents[intent_id]
            if intent.status not in ("requires_payment_method", "requires_confirmation"):
                raise PaymentRequestInvalid(f"This PaymentIntent is {intent.status}")
            if payment_method in DECLINING_METHODS:
                self.pay(intent_id, decline=True)
                raise PaymentDeclined("Your card was declined.")
            return self.pay(intent_id)

        return self._idempotent("confirm_payment_intent", idempotency_key, make)

    def retrieve_payment_intent(self, intent_id: str) -> IntentSnapshot:
        self.calls.append(("retrieve_payment_intent", intent_id))
        if intent_id not in self.intents:
            raise PaymentRequestInvalid(
                f"No such payment_intent: {intent_id}", stripe_code="resource_missing"
            )
        return self.intents[intent_id]

    def capture_payment_intent(
        self, intent_id: str, *, amount: Money | None, idempotency_key: str
    ) -> IntentSnapshot:
        def make() -> IntentSnapshot:
            intent = self.intents[intent_id]
            if intent.status != "requires_capture" and not self.permissive:
                raise PaymentRequestInvalid("This PaymentIntent could not be captured")
            if self.permissive and not intent.amount_capturable:
                intent = replace(intent, amount_capturable=intent.amount)
            captured = intent.amount_capturable if amount is None else amount.minor
            if captured > intent.amount_capturable:
                raise PaymentRequestInvalid("amount_to_capture exceeds the authorised amount")
            intent = replace(
                intent,
                status="succeeded",
                amount_received=captured,
                amount_capturable=0,
                charge_id=self._next_id("ch"),
            )
            self.intents[intent_id] = intent
            return intent

        return self._idempotent("capture_payment_intent", idempotency_key, make)

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> IntentSnapshot:
        def make() -> IntentSnapshot:
            intent = self.intents[intent_id]
            if intent.status in ("succeeded", "canceled") and not self.permissive:
                raise PaymentRequestInvalid(
                    f"Cannot cancel a PaymentIntent that is {intent.status}"
                )
            intent = replace(intent, status="canceled", amount_capturable=0)
            self.intents[intent_id] = intent
            return intent

        return self._idempotent("cancel_payment_intent", idempotency_key, make)

    # --- Refunds --------------------------------------------------------------------
    def create_refund(
        self,
        *,
        intent_id: str,
        amount: Money,
        reason: str,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> RefundSnapshot:
        def make() -> RefundSnapshot:
            intent = self.intents[intent_id]
            self._ensure_refundable(intent_id, amount.minor)
            refund = RefundSnapshot(
                id=self._next_id("re"),
                status=self.refund_status,
                amount=amount.minor,
                currency=amount.currency,
                payment_intent_id=intent_id,
                charge_id=intent.charge_id,
                metadata={**metadata, "reason": reason},
                created=int(time.time()),
            )
            self.refunds[refund.id] = refund
            return refund

        return self._idempotent("create_refund", idempotency_key, make)

    def _ensure_refundable(self, intent_id: str, amount: int) -> None:
        """Stripe's money rule: refunds and disputes (unless won) stay within what was paid."""
        if self.permissive:
            return
        refunded = sum(
            r.amount
            for r in self.refunds.values()
            if r.payment_intent_id == intent_id and r.status in ("pending", "succeeded")
        )
        disputed = sum(
            d.amount
            for d in self.disputes.values()
            if d.payment_intent_id == intent_id and d.status != "won"
        )
        if amount + refunded + disputed > self.intents[intent_id].amount_received:
            code = "charge_disputed" if disputed else "amount_too_large"
            raise PaymentRequestInvalid("Refund amount exceeds the charge", stripe_code=code)

    def list_refunds(self, intent_id: str) -> list[RefundSnapshot]:
        self.calls.append(("list_refunds", intent_id))
        return [r for r in self.refunds.values() if r.payment_intent_id == intent_id]

    def settle_refund(
        self, refund_id: str, status: str, failure_reason: str = ""
    ) -> RefundSnapshot:
        refund = replace(self.refunds[refund_id], status=status, failure_reason=failure_reason)
        self.refunds[refund_id] = refund
        return refund

    # --- Reconciliation reads, and what happens at Stripe without us ------------------
    def _pages(self, operation: str, created_gte: int | None, objects: list[Any]) -> Iterator[Any]:
        """Stripe's paging: 100 objects a request, each request noted in `calls`."""
        wanted = [o for o in objects if created_gte is None or o.created >= created_gte]
        for start in range(0, max(len(wanted), 1), PAGE_SIZE):
            with self._lock:
                self.calls.append((operation, str(created_gte)))
                queued = self.fail_next.get(operation)
                if queued:
                    raise queued.pop(0)
            yield wanted[start : start + PAGE_SIZE]

    def list_payment_intents(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[IntentSnapshot]]:
        return self._pages("list_payment_intents", created_gte, list(self.intents.values()))

    def list_account_charges(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[ChargeSnapshot]]:
        charges = [c for intent_id in list(self.intents) for c in self._charges(intent_id)]
        return self._pages("list_account_charges", created_gte, charges)

    def list_account_refunds(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[RefundSnapshot]]:
        return self._pages("list_account_refunds", created_gte, list(self.refunds.values()))

    def list_account_disputes(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[DisputeSnapshot]]:
        return self._pages("list_account_disputes", created_gte, list(self.disputes.values()))

    def list_charges(self, intent_id: str) -> list[ChargeSnapshot]:
        self.calls.append(("list_charges", intent_id))
        return self._charges(intent_id)

    def _charges(self, intent_id: str) -> list[ChargeSnapshot]:
        intent = self.intents[intent_id]
        if not intent.charge_id:
            return []
        return [
            ChargeSnapshot(
                id=intent.charge_id,
                status="succeeded",
                amount=intent.amount,
                currency=intent.currency,
                captured=intent.status == "succeeded",
                amount_captured=intent.amount_received,
                payment_intent_id=intent_id,
                created=intent.created,
            )
        ]

    def list_disputes(self, intent_id: str) -> list[DisputeSnapshot]:
        self.calls.append(("list_disputes", intent_id))
        return [d for d in self.disputes.values() if d.payment_intent_id == intent_id]

    def refund_outside(
        self, intent_id: str, amount: int, status: str = "succeeded"
    ) -> RefundSnapshot:
        """A refund made in the Stripe Dashboard: none of our metadata, Stripe's money rules."""
        intent = self.intents[intent_id]
        self._ensure_refundable(intent_id, amount)
        refund = RefundSnapshot(
            id=self._next_id("re"),
            status=status,
            amount=amount,
            currency=intent.currency,
            payment_intent_id=intent_id,
            charge_id=intent.charge_id,
            created=int(time.time()),
        )
        self.refunds[refund.id] = refund
        return refund

    def dispute(
        self, intent_id: str, amount: int, status: str = "needs_response"
    ) -> DisputeSnapshot:
        """The cardholder's bank disputes the charge (or the dispute moves on, same id)."""
        intent = self.intents[intent_id]
        existing = [d for d in self.disputes.values() if d.payment_intent_id == intent_id]
        dispute = DisputeSnapshot(
            id=existing[0].id if existing else self._next_id("dp"),
            status=status,
            amount=amount,
            currency=intent.currency,
            charge_id=intent.charge_id,
            payment_intent_id=intent_id,
            reason="fraudulent",
            created=int(time.time()),
        )
        self.disputes[dispute.id] = dispute
        return dispute

    # --- Webhooks and the Events API -------------------------------------------------
    def add_event(self, payload: bytes) -> GatewayEvent:
        """An event Stripe made (its webhook delivered or not): listed by `list_events`."""
        event = self.event_from_payload(json.loads(payload))
        with self._lock:
            self.events.append(event)
        return event

    def list_events(
        self, *, created_gte: int, types: Collection[str]
    ) -> Iterator[list[GatewayEvent]]:
        wanted = [e for e in reversed(self.events) if e.type in set(types)]
        return self._pages("list_events", created_gte, wanted)

    def parse_webhook(self, payload: bytes, signature: str) -> GatewayEvent:
        from shopkeeper.payments.stripe.client import StripeGateway

        return StripeGateway(
            secret_key="sk_test_fake", webhook_secret=WEBHOOK_SECRET
        ).parse_webhook(payload, signature)

    def event_from_payload(self, payload: Mapping[str, Any]) -> GatewayEvent:
        from shopkeeper.payments.stripe.client import StripeGateway

        return StripeGateway(
            secret_key="sk_test_fake", webhook_secret=WEBHOOK_SECRET
        ).event_from_payload(payload)


def intent_event_payload(
    intent: IntentSnapshot, event_type: str, event_id: str | None = None
) -> bytes:
    """A Stripe event body carrying `intent` in Stripe's shape."""
    obj: dict[str, Any] = {
        "id": intent.id,
        "object": "payment_intent",
        "status": intent.status,
        "amount": intent.amount,
        "amount_received": intent.amount_received,
        "amount_capturable": intent.amount_capturable,
        "currency": intent.currency.lower(),
        "capture_method": intent.capture_method,
        "client_secret": intent.client_secret,
        "metadata": {"order_number": intent.order_number},
        "latest_charge": intent.charge_id or None,
        "last_payment_error": {"message": intent.last_error} if intent.last_error else None,
    }
    return json.dumps(
        {
            "id": event_id or f"evt_{intent.id}_{event_type}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    ).encode()


def refund_object(refund: RefundSnapshot) -> dict[str, Any]:
    """`refund` as Stripe's Refund object."""
    return {
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "currency": refund.currency.lower(),
        "status": refund.status,
        "payment_intent": refund.payment_intent_id or None,
        "charge": refund.charge_id or None,
        "failure_reason": refund.failure_reason or None,
        "metadata": dict(refund.metadata),
        "created": refund.created or int(time.time()),
    }


def refund_event_payload(
    refund: RefundSnapshot, event_type: str, event_id: str | None = None
) -> bytes:
    """A Stripe event body carrying `refund` in Stripe's shape (`refund.updated`, ...)."""
    return event_payload(
        refund_object(refund),
        event_type,
        event_id or f"evt_{refund.id}_{event_type}_{refund.status}",
    )


def event_payload(obj: Mapping[str, Any], event_type: str, event_id: str) -> bytes:
    """Stripe's event envelope around `obj`."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2024-06-20",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": dict(obj)},
        }
    ).encode()


def charge_event_payload(
    charge: ChargeSnapshot,
    event_type: str = "charge.refunded",
    event_id: str | None = None,
    *,
    refunds: list[RefundSnapshot] | None = None,
) -> bytes:
    """A Stripe event body carrying `charge` in Stripe's shape.

    With `refunds`, the charge lists them as API versions before 2022-11-15 did (and endpoints
    that expand `refunds` still do); without, the list is left out as Stripe does today.
    """
    refunded = charge.amount_refunded or sum(
        r.amount for r in refunds or () if r.status in ("pending", "succeeded")
    )
    obj: dict[str, Any] = {
        "id": charge.id,
        "object": "charge",
        "amount": charge.amount,
        "amount_captured": charge.amount_captured,
        "amount_refunded": refunded,
        "captured": charge.captured,
        "currency": charge.currency.lower(),
        "paid": charge.status == "succeeded",
        "payment_intent": charge.payment_intent_id or None,
        "refunded": refunded >= charge.amount_captured > 0,
        "status": charge.status,
        "created": charge.created or int(time.time()),
        "metadata": {},
    }
    if refunds is not None:
        obj["refunds"] = {
            "object": "list",
            "data": [refund_object(refund) for refund in refunds],
            "has_more": False,
            "total_count": len(refunds),
            "url": f"/v1/charges/{charge.id}/refunds",
        }
    return event_payload(obj, event_type, event_id or f"evt_{charge.id}_{event_type}")


def dispute_event_payload(
    dispute: DisputeSnapshot, event_type: str, event_id: str | None = None
) -> bytes:
    """A Stripe event body carrying `dispute` in Stripe's shape (`charge.dispute.created`, ...)."""
    created = dispute.created or int(time.time())
    obj: dict[str, Any] = {
        "id": dispute.id,
        "object": "dispute",
        "amount": dispute.amount,
        "balance_transactions": [],
        "charge": dispute.charge_id or None,
        "created": created,
        "currency": dispute.currency.lower(),
        "evidence_details": {
            "due_by": created + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": dispute.status.startswith("warning_"),
        "livemode": False,
        "metadata": {},
        "payment_intent": dispute.payment_intent_id or None,
        "reason": dispute.reason or "general",
        "status": dispute.status,
    }
    return event_payload(
        obj, event_type, event_id or f"evt_{dispute.id}_{event_type}_{dispute.status}"
    )


__all__ = [
    "FakeGateway",
    "GatewayInBetween",
    "PaymentDeclined",
    "WebhookSignatureInvalid",
    "charge_event_payload",
    "dispute_event_payload",
    "intent_event_payload",
    "refund_event_payload",
    "sign_payload",
]


class GatewayInBetween:
    """A gateway that hands every call to `gateway` but those its subclass defines: how a test
    puts a fault, a hold or a count between the application and Stripe."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gateway, name)


class AlwaysLost(GatewayInBetween):
    """Stripe makes the refund but every answer is lost on the way back."""

    def create_refund(self, **kwargs):
        self._gateway.create_refund(**kwargs)
        raise PaymentOutcomeUnknown("read timed out")
