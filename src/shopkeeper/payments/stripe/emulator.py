"""`EmulatorGateway`: the Stripe adapter for localstripe, used only when `STRIPE_API_BASE` is set.

Each override is one of localstripe's quirks (shared/STRIPE_NOTES.md); real Stripe never takes
these paths:
- it rejects `automatic_payment_methods` and a refund's `reason` (400 "Unexpected ...");
- confirm with `payment_method` answers 500 "Not implemented": the method is set first;
- it has no `expand`, refuses a `created` filter (charges take `created[gt]` only), cannot
  list charges by PaymentIntent (500), has no disputes (404) and lists events by one `type`
  only (no `types`);
- its answers lack `amount_received`, `amount_capturable` and `amount_captured`, and its
  charge has no `payment_method_details` (the card is read from the payment method).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import replace
from typing import Any

from shopkeeper.errors import DomainError
from shopkeeper.payments.gateway import (
    ChargeSnapshot,
    DisputeSnapshot,
    GatewayEvent,
    IntentSnapshot,
    RefundSnapshot,
)
from shopkeeper.payments.stripe.client import StripeGateway
from shopkeeper.payments.stripe.snapshots import charge_snapshot, get, latest_charge
from shopkeeper.payments.stripe_statuses import IntentStatus


def _amount_received(intent: Mapping[str, Any], status: str) -> int:
    """localstripe books the uncaptured rest of a partial capture as a refund of the charge, so
    when the capture is first seen, amount minus amount_refunded is what was captured. (Later
    views may be lower after real refunds; the ledger records a capture once, from the first.)"""
    charge = latest_charge(intent)
    if status != IntentStatus.SUCCEEDED or not isinstance(charge, Mapping):
        return 0
    captured = get(charge, "amount_captured")
    if captured is not None:
        return int(captured)
    return int(get(charge, "amount", 0)) - int(get(charge, "amount_refunded", 0))


def stripe_shaped(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """A localstripe object with the amounts Stripe reports and localstripe leaves out."""
    kind = get(obj, "object")
    filled: dict[str, Any] = {}
    if kind == "payment_intent":
        status = get(obj, "status", "")
        if get(obj, "amount_capturable") is None:
            held = status == IntentStatus.REQUIRES_CAPTURE
            filled["amount_capturable"] = int(get(obj, "amount", 0)) if held else 0
        if get(obj, "amount_received") is None:
            filled["amount_received"] = _amount_received(obj, status)
    elif kind == "charge" and get(obj, "amount_captured") is None:
        # A captured charge there took its whole amount.
        captured = bool(get(obj, "captured", False))
        filled["amount_captured"] = int(get(obj, "amount", 0)) if captured else 0
    return {**obj, **filled} if filled else obj


def _since(created: int, created_gte: int | None) -> bool:
    return created_gte is None or created >= created_gte


class EmulatorGateway(StripeGateway):
    def _shaped(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        return stripe_shaped(obj)

    def _intent_create_params(self) -> dict[str, Any]:
        return {}

    def _refund_reason(self, reason: str) -> dict[str, Any]:
        return {}  # ours travels in metadata

    def _retrieve_params(self) -> dict[str, Any] | None:
        return None

    def _with_card(self, snapshot: IntentSnapshot, intent: Mapping[str, Any]) -> IntentSnapshot:
        """localstripe's charge has only the payment method's id: read the card from it. The
        card is for display, so failing to read it fails nothing."""
        if snapshot.card_brand or not snapshot.charge_id:
            return snapshot
        method_id = get(latest_charge(intent), "payment_method")
        if not isinstance(method_id, str) or not method_id:
            return snapshot
        try:
            method = self._call(
                "retrieve payment method",
                self._client.v1.payment_methods.retrieve,
                method_id,
                read=True,
            )
        except DomainError:
            return snapshot
        card = get(method, "card")
        return replace(
            snapshot, card_brand=get(card, "brand", ""), card_last4=get(card, "last4", "")
        )

    def confirm_payment_intent(
        self, intent_id: str, *, payment_method: str, idempotency_key: str
    ) -> IntentSnapshot:
        """The method is set with an update first, then the PaymentIntent is confirmed."""
        self._call(
            "confirm payment",
            self._client.v1.payment_intents.update,
            intent_id,
            params={"payment_method": payment_method},
            options={"idempotency_key": f"{idempotency_key}-method"},
        )
        intent = self._call(
            "confirm payment",
            self._client.v1.payment_intents.confirm,
            intent_id,
            options={"idempotency_key": idempotency_key},
        )
        return self._with_card(self._intent(intent), intent)

    def list_payment_intents(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[IntentSnapshot]]:
        """localstripe refuses a `created` filter: every PaymentIntent, filtered here."""
        for page in super().list_payment_intents():
            yield [intent for intent in page if _since(intent.created, created_gte)]

    def list_account_charges(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[ChargeSnapshot]]:
        """localstripe filters charges by `created[gt]` only (`gte` answers 500)."""
        params = {} if created_gte is None else {"created": {"gt": created_gte - 1}}
        pages = self._pages("list charges", self._client.v1.charges.list, **params)
        for page in pages:
            yield [charge_snapshot(charge) for charge in page]

    def list_account_refunds(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[RefundSnapshot]]:
        """localstripe refuses a `created` filter on refunds too: filtered here."""
        for page in super().list_account_refunds():
            yield [refund for refund in page if _since(refund.created, created_gte)]

    def list_account_disputes(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[DisputeSnapshot]]:
        """localstripe has no disputes (404): none, and no request."""
        yield from ()

    def list_events(
        self, *, created_gte: int, types: Collection[str]
    ) -> Iterator[list[GatewayEvent]]:
        """localstripe takes one `type`, not Stripe's `types`: every event since, filtered here."""
        wanted = frozenset(types)
        pages = self._pages(
            "list events", self._client.v1.events.list, **self._created(created_gte)
        )
        for page in pages:
            yield self._readable_events(event for event in page if event.get("type") in wanted)

    def list_charges(self, intent_id: str) -> list[ChargeSnapshot]:
        """localstripe's PaymentIntent carries its charges, as Stripe's older API versions did."""
        intent = self._call(
            "list charges", self._client.v1.payment_intents.retrieve, intent_id, read=True
        )
        charges = get(get(intent, "charges"), "data", [])
        return [charge_snapshot(self._shaped(charge)) for charge in charges]

    def list_disputes(self, intent_id: str) -> list[DisputeSnapshot]:
        return []
