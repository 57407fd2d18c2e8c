"""The payment gateway port: what Shopkeeper asks of Stripe, in its own terms. Pure Python.

`payments/stripe/` holds the one implementation that talks to Stripe (`provider.get_gateway`
builds it); tests use `tests/fakes.FakeGateway`. Outcomes are domain values and errors:
declined, invalid, or unknown. Unknown (timeout, 5xx, lost connection) never means failed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shopkeeper.money import Money
from shopkeeper.payments.stripe_statuses import (
    ChargeStatus,
    DisputeStatus,
    IntentStatus,
    StripeRefundStatus,
)


@dataclass(frozen=True, slots=True)
class IntentSnapshot:
    """What Stripe says about one PaymentIntent."""

    id: str
    status: IntentStatus
    amount: int
    currency: str  # upper case
    capture_method: str
    client_secret: str = ""
    amount_received: int = 0
    amount_capturable: int = 0
    order_number: str = ""
    charge_id: str = ""
    card_brand: str = ""
    card_last4: str = ""
    last_error: str = ""
    created: int = 0  # Unix time Stripe created it (0: not reported)
    # Unix time of the latest charge, the card's authorisation (0: not reported, e.g. the
    # charge is only an id): the authorisation lapses counting from it.
    charge_created: int = 0


@dataclass(frozen=True, slots=True)
class RefundSnapshot:
    id: str
    status: StripeRefundStatus
    amount: int
    currency: str
    payment_intent_id: str = ""
    charge_id: str = ""
    failure_reason: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    created: int = 0


@dataclass(frozen=True, slots=True)
class ChargeSnapshot:
    """One charge of a PaymentIntent, as reconciliation reads it.

    `amount_captured` is what the charge took; localstripe does not report it, so there it is
    the whole amount once captured (localstripe books the uncaptured rest as a refund instead).
    """

    id: str
    status: ChargeStatus
    amount: int
    currency: str
    captured: bool
    amount_captured: int = 0
    amount_refunded: int = 0
    payment_intent_id: str = ""
    created: int = 0


@dataclass(frozen=True, slots=True)
class DisputeSnapshot:
    """A dispute (chargeback) of a PaymentIntent's charge."""

    id: str
    status: DisputeStatus
    amount: int
    currency: str
    charge_id: str = ""
    payment_intent_id: str = ""
    reason: str = ""
    created: int = 0


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A verified webhook event."""

    id: str
    type: str
    created: int
    object: Mapping[str, Any]
    payload: Mapping[str, Any]
    # The event's object in our terms, when it is a PaymentIntent, a Refund, a Charge or a
    # Dispute.
    intent: IntentSnapshot | None = None
    refund: RefundSnapshot | None = None
    charge: ChargeSnapshot | None = None
    dispute: DisputeSnapshot | None = None
    # Every refund of the event's charge or payment: listed by a charge payload (API versions
    # before 2022-11-15, or an endpoint that expands them), or read from Stripe before the
    # event's transaction. None when not known yet.
    refunds: tuple[RefundSnapshot, ...] | None = None


class PaymentGateway(Protocol):
    def create_payment_intent(
        self,
        *,
        amount: Money,
        order_number: str,
        capture_method: str,
        idempotency_key: str,
    ) -> IntentSnapshot: ...

    def retrieve_payment_intent(self, intent_id: str) -> IntentSnapshot: ...

    def confirm_payment_intent(
        self, intent_id: str, *, payment_method: str, idempotency_key: str
    ) -> IntentSnapshot:
        """Confirm with a payment method the browser tokenised; a decline raises PaymentDeclined."""
        ...

    def capture_payment_intent(
        self, intent_id: str, *, amount: Money | None, idempotency_key: str
    ) -> IntentSnapshot: ...

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> IntentSnapshot: ...

    def create_refund(
        self,
        *,
        intent_id: str,
        amount: Money,
        reason: str,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> RefundSnapshot: ...

    def list_refunds(self, intent_id: str) -> list[RefundSnapshot]: ...

    # Reads for reconciliation. One PaymentIntent's charges and disputes, all pages:
    def list_charges(self, intent_id: str) -> list[ChargeSnapshot]: ...

    def list_disputes(self, intent_id: str) -> list[DisputeSnapshot]: ...

    # The account's lists, created at or after `created_gte` (Unix time; None: all), newest
    # first as Stripe lists them. Each page yielded is one request (up to 100 objects), fetched
    # only when the caller asks for it, so the caller can pace and count requests.
    def list_payment_intents(
        self, *, created_gte: int | None = None
    ) -> Iterator[Sequence[IntentSnapshot]]: ...

    def list_account_charges(
        self, *, created_gte: int | None = None
    ) -> Iterator[Sequence[ChargeSnapshot]]: ...

    def list_account_refunds(
        self, *, created_gte: int | None = None
    ) -> Iterator[Sequence[RefundSnapshot]]: ...

    def list_account_disputes(
        self, *, created_gte: int | None = None
    ) -> Iterator[Sequence[DisputeSnapshot]]: ...

    # Stripe's Events API: the events of these `types` created at or after `created_gte` (Unix
    # time; Stripe keeps 30 days of them), newest first, one request a page as above. An event
    # that cannot be read (not Stripe's shape) is left out, as a webhook of it would be refused.
    def list_events(
        self, *, created_gte: int, types: Collection[str]
    ) -> Iterator[Sequence[GatewayEvent]]: ...

    def parse_webhook(self, payload: bytes, signature: str) -> GatewayEvent: ...

    def event_from_payload(self, payload: Mapping[str, Any]) -> GatewayEvent:
        """An event already verified and stored, read again (replaying failed events)."""
        ...
