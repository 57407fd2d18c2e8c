"""The only module that imports the Stripe SDK.

Translates Stripe objects into snapshots and Stripe errors into domain outcomes: declined,
invalid, or unknown. Every POST carries an idempotency key derived from our own row.

One retry layer, ours: the SDK's own retries are off (`max_network_retries=0`), since a retry
below ours multiplies with it and resends requests that may still be queued at Stripe. Here a
read is retried after any failure, and a keyed write (with its same key) only when the earlier
send certainly ended (see `PaymentOutcomeUnknown.in_flight`). Refunds are not retried here:
`refunds.services` retries them, and leaves one that may be in flight for later settlement.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from django.conf import settings
from requests.exceptions import ConnectTimeout
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

import stripe
from shopkeeper.errors import (
    DomainError,
    PaymentDeclined,
    PaymentOutcomeUnknown,
    PaymentRequestInvalid,
    WebhookEventMalformed,
    WebhookSignatureInvalid,
)
from shopkeeper.money import Money
from shopkeeper.payments.event_shape import check_event_shape
from shopkeeper.payments.gateway import (
    ChargeSnapshot,
    DisputeSnapshot,
    GatewayEvent,
    IntentSnapshot,
    RefundSnapshot,
)

logger = logging.getLogger(__name__)

WEBHOOK_TOLERANCE_SECONDS = 300
# Stripe accepts these refund reasons; ours ("other") travels in metadata only.
STRIPE_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
# Seconds before each retry of a call other than a refund create (see the module docstring).
RETRY_DELAYS = (0.5,)
NEVER_SENT = (ConnectTimeout, ConnectTimeoutError, NewConnectionError)


def _never_sent(error: BaseException) -> bool:
    """Did the request certainly not reach Stripe (refused, or no connection in time)?

    A read timeout or a connection lost after sending is not: the request may be executing.
    """
    seen: set[int] = set()
    causes: list[BaseException | None] = [error]
    while causes:
        cause = causes.pop()
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, NEVER_SENT):
            return True
        linked = [*cause.args, getattr(cause, "reason", None)]  # urllib3's MaxRetryError
        causes += [cause.__cause__, cause.__context__]
        causes += [link for link in linked if isinstance(link, BaseException)]
    return False


@contextmanager
def _translated_errors(operation: str) -> Iterator[None]:
    try:
        yield
    except stripe.CardError as error:
        raise PaymentDeclined(error.user_message or "The card was declined") from error
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        in_flight = isinstance(error, stripe.APIConnectionError) and not _never_sent(error)
        logger.warning(
            "Stripe %s: outcome unknown (%s%s)",
            operation,
            type(error).__name__,
            ", may still be in flight" if in_flight else "",
        )
        raise PaymentOutcomeUnknown(
            f"Stripe did not answer the {operation} request", in_flight=in_flight
        ) from error
    except stripe.StripeError as error:
        logger.warning("Stripe %s rejected: %s", operation, error.user_message or error)
        raise PaymentRequestInvalid(
            error.user_message or f"Stripe rejected the {operation} request",
            stripe_code=getattr(error, "code", None) or "",
            http_status=getattr(error, "http_status", None),
        ) from error


def _plain(obj: Any) -> Any:
    """SDK objects as plain dicts, so snapshots read one shape."""
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else obj


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    try:
        value = obj[key]
    except (KeyError, TypeError, IndexError):
        return default
    return default if value is None else value


def _latest_charge(intent: Mapping[str, Any]) -> Any:
    """`latest_charge`: an id in Stripe, an object in localstripe; old payloads list charges."""
    charge = _get(intent, "latest_charge")
    if charge is None:
        charges = _get(_get(intent, "charges"), "data", [])
        charge = charges[-1] if charges else None
    return charge


# PaymentIntent statuses in which the latest charge is the one that holds the money.
CHARGED_STATUSES = frozenset({"requires_capture", "succeeded"})


def _charge_id(charge: Any, status: str) -> str:
    """The charge holding the money; a failed attempt's charge is no use for refunds."""
    if isinstance(charge, str):
        return charge if status in CHARGED_STATUSES else ""
    if _get(charge, "status") == "failed":
        return ""
    return str(_get(charge, "id", ""))


def _amount_received(intent: Mapping[str, Any], charge: Any, status: str) -> int:
    received = _get(intent, "amount_received")
    if received is not None:
        return int(received)
    # localstripe omits amount_received and its charges lack amount_captured. It books the
    # uncaptured rest of a partial capture as a refund of the charge, so when the capture is
    # first seen, amount minus amount_refunded is what was captured. (Later views may be lower
    # after real refunds; the ledger records a capture once, from the first view.)
    if status != "succeeded" or not isinstance(charge, Mapping):
        return 0
    captured = _get(charge, "amount_captured")
    if captured is not None:
        return int(captured)
    return int(_get(charge, "amount", 0)) - int(_get(charge, "amount_refunded", 0))


def intent_snapshot(intent: Mapping[str, Any]) -> IntentSnapshot:
    status = _get(intent, "status", "")
    amount = int(_get(intent, "amount", 0))
    charge = _latest_charge(intent)
    card = _get(_get(charge, "payment_method_details"), "card")
    amount_capturable = _get(intent, "amount_capturable")
    if amount_capturable is None:  # localstripe omits it
        amount_capturable = amount if status == "requires_capture" else 0
    error = _get(intent, "last_payment_error")
    return IntentSnapshot(
        id=_get(intent, "id", ""),
        status=status,
        amount=amount,
        currency=str(_get(intent, "currency", "")).upper(),
        capture_method=_get(intent, "capture_method", "automatic"),
        client_secret=_get(intent, "client_secret", ""),
        amount_received=_amount_received(intent, charge, status),
        amount_capturable=int(amount_capturable),
        order_number=_get(_get(intent, "metadata"), "order_number", ""),
        charge_id=_charge_id(charge, status),
        card_brand=_get(card, "brand", ""),
        card_last4=_get(card, "last4", ""),
        last_error=(_get(error, "message", "") if error else "")[:500],
        created=int(_get(intent, "created", 0)),
    )


def refund_snapshot(refund: Mapping[str, Any]) -> RefundSnapshot:
    charge = _get(refund, "charge", "")
    return RefundSnapshot(
        id=_get(refund, "id", ""),
        status=_get(refund, "status", "pending"),
        amount=int(_get(refund, "amount", 0)),
        currency=str(_get(refund, "currency", "")).upper(),
        payment_intent_id=_get(refund, "payment_intent", "") or "",
        charge_id=charge if isinstance(charge, str) else _get(charge, "id", ""),
        failure_reason=_get(refund, "failure_reason", ""),
        metadata=dict(_get(refund, "metadata", {}) or {}),
        created=int(_get(refund, "created", 0)),
    )


def charge_snapshot(charge: Mapping[str, Any]) -> ChargeSnapshot:
    amount = int(_get(charge, "amount", 0))
    captured = bool(_get(charge, "captured", False))
    intent = _get(charge, "payment_intent", "")
    return ChargeSnapshot(
        id=_get(charge, "id", ""),
        status=_get(charge, "status", ""),
        amount=amount,
        currency=str(_get(charge, "currency", "")).upper(),
        captured=captured,
        # localstripe omits amount_captured: a captured charge there took its whole amount.
        amount_captured=int(_get(charge, "amount_captured", amount if captured else 0)),
        amount_refunded=int(_get(charge, "amount_refunded", 0)),
        payment_intent_id=intent if isinstance(intent, str) else _get(intent, "id", ""),
        created=int(_get(charge, "created", 0)),
    )


def dispute_snapshot(dispute: Mapping[str, Any]) -> DisputeSnapshot:
    charge = _get(dispute, "charge", "")
    intent = _get(dispute, "payment_intent", "")
    return DisputeSnapshot(
        id=_get(dispute, "id", ""),
        status=_get(dispute, "status", ""),
        amount=int(_get(dispute, "amount", 0)),
        currency=str(_get(dispute, "currency", "")).upper(),
        charge_id=charge if isinstance(charge, str) else _get(charge, "id", ""),
        payment_intent_id=intent if isinstance(intent, str) else _get(intent, "id", ""),
        reason=_get(dispute, "reason", ""),
        created=int(_get(dispute, "created", 0)),
    )


def _listed_refunds(charge: Mapping[str, Any]) -> tuple[RefundSnapshot, ...] | None:
    """A charge's refunds list, when complete: Stripe stopped embedding it in 2022-11-15."""
    refunds = _get(charge, "refunds")
    data = _get(refunds, "data")
    if not isinstance(data, list) or _get(refunds, "has_more", False):
        return None
    return tuple(refund_snapshot(refund) for refund in data)


class StripeGateway:
    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        timeout: float = 10.0,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        emulator: bool = False,
    ) -> None:
        base_addresses: Any = {"api": api_base} if api_base else None
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses=base_addresses,
            max_network_retries=0,  # our retries are the only ones (see the module docstring)
            http_client=stripe.RequestsClient(timeout=timeout),
        )
        self._retry_delays = retry_delays
        self._webhook_secret = webhook_secret
        # localstripe rejects some parameters real Stripe accepts (see shared/STRIPE_NOTES.md).
        self._emulator = emulator

    def __repr__(self) -> str:  # never show the key
        return f"StripeGateway(emulator={self._emulator})"

    @classmethod
    def from_settings(cls) -> StripeGateway:
        return cls(
            secret_key=settings.STRIPE_SECRET_KEY,
            webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
            api_base=settings.STRIPE_API_BASE,
            timeout=settings.STRIPE_TIMEOUT,
            emulator=settings.STRIPE_API_BASE is not None,
        )

    def _call(
        self,
        operation: str,
        method: Callable[..., Any],
        *args: Any,
        read: bool = False,
        retry: bool = True,
        **kwargs: Any,
    ) -> Any:
        """One Stripe call, retried where that cannot do it twice (see the module docstring)."""
        delays = (*self._retry_delays, None) if retry else (None,)
        for delay in delays:
            try:
                with _translated_errors(operation):
                    return _plain(method(*args, **kwargs))
            except PaymentOutcomeUnknown as error:
                if delay is None or (error.in_flight and not read):
                    raise
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def create_payment_intent(
        self, *, amount: Money, order_number: str, capture_method: str, idempotency_key: str
    ) -> IntentSnapshot:
        params: dict[str, Any] = {
            "amount": amount.minor,
            "currency": amount.currency.lower(),
            "capture_method": capture_method,
            "metadata": {"order_number": order_number},
        }
        if not self._emulator:
            params["automatic_payment_methods"] = {"enabled": True}
        intent = self._call(
            "create payment",
            self._client.v1.payment_intents.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )
        return intent_snapshot(intent)

    def retrieve_payment_intent(self, intent_id: str) -> IntentSnapshot:
        intent = self._call(
            "retrieve payment",
            self._client.v1.payment_intents.retrieve,
            intent_id,
            params={"expand": ["latest_charge"]} if not self._emulator else None,
            read=True,
        )
        return self._with_card(intent_snapshot(intent), intent)

    def _with_card(self, snapshot: IntentSnapshot, intent: Mapping[str, Any]) -> IntentSnapshot:
        """Card brand and last4 from the payment method, where the charge does not carry them.

        Stripe's expanded charge has `payment_method_details`; localstripe's has only the
        payment method's id. The card is for display, so failing to read it fails nothing.
        """
        if snapshot.card_brand or not snapshot.charge_id:
            return snapshot
        method_id = _get(_latest_charge(intent), "payment_method")
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
        card = _get(method, "card")
        return replace(
            snapshot, card_brand=_get(card, "brand", ""), card_last4=_get(card, "last4", "")
        )

    def confirm_payment_intent(
        self, intent_id: str, *, payment_method: str, idempotency_key: str
    ) -> IntentSnapshot:
        """Server-side confirmation, for where the browser cannot confirm (localstripe's Stripe.js).

        localstripe answers confirm-with-a-method with 500 "Not implemented", so there the
        method is set with an update first, then the PaymentIntent is confirmed.
        """
        confirm = self._client.v1.payment_intents.confirm
        if not self._emulator:
            intent = self._call(
                "confirm payment",
                confirm,
                intent_id,
                params={"payment_method": payment_method},
                options={"idempotency_key": idempotency_key},
            )
            return self._with_card(intent_snapshot(intent), intent)
        self._call(
            "confirm payment",
            self._client.v1.payment_intents.update,
            intent_id,
            params={"payment_method": payment_method},
            options={"idempotency_key": f"{idempotency_key}-method"},
        )
        intent = self._call(
            "confirm payment", confirm, intent_id, options={"idempotency_key": idempotency_key}
        )
        return self._with_card(intent_snapshot(intent), intent)

    def capture_payment_intent(
        self, intent_id: str, *, amount: Money | None, idempotency_key: str
    ) -> IntentSnapshot:
        params = {"amount_to_capture": amount.minor} if amount is not None else {}
        intent = self._call(
            "capture",
            self._client.v1.payment_intents.capture,
            intent_id,
            params=params,
            options={"idempotency_key": idempotency_key},
        )
        return intent_snapshot(intent)

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> IntentSnapshot:
        intent = self._call(
            "cancel payment",
            self._client.v1.payment_intents.cancel,
            intent_id,
            options={"idempotency_key": idempotency_key},
        )
        return intent_snapshot(intent)

    def create_refund(
        self,
        *,
        intent_id: str,
        amount: Money,
        reason: str,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> RefundSnapshot:
        params: dict[str, Any] = {
            "payment_intent": intent_id,
            "amount": amount.minor,
            "metadata": {**metadata, "reason": reason},
        }
        if reason in STRIPE_REFUND_REASONS and not self._emulator:
            params["reason"] = reason
        refund = self._call(
            "refund",
            self._client.v1.refunds.create,
            params=params,
            options={"idempotency_key": idempotency_key},
            retry=False,  # refunds.services retries it: one layer
        )
        return refund_snapshot(refund)

    def list_refunds(self, intent_id: str) -> list[RefundSnapshot]:
        with _translated_errors("list refunds"):
            page = self._client.v1.refunds.list(params={"payment_intent": intent_id, "limit": 100})
            return [refund_snapshot(_plain(refund)) for refund in page.auto_paging_iter()]

    def list_payment_intents(self, *, created_gte: int | None = None) -> Iterator[IntentSnapshot]:
        """All pages. localstripe refuses a `created` filter, so there it filters here."""
        params: Any = {"limit": 100}
        if created_gte is not None and not self._emulator:
            params["created"] = {"gte": created_gte}
        with _translated_errors("list payments"):
            page = self._client.v1.payment_intents.list(params=params)
            for intent in page.auto_paging_iter():
                snapshot = intent_snapshot(_plain(intent))
                if created_gte is None or snapshot.created >= created_gte:
                    yield snapshot

    def list_charges(self, intent_id: str) -> list[ChargeSnapshot]:
        """A PaymentIntent's charges. localstripe cannot list them by PaymentIntent (it answers
        500), but its PaymentIntent carries them, as Stripe's older API versions did."""
        with _translated_errors("list charges"):
            if self._emulator:
                intent = _plain(self._client.v1.payment_intents.retrieve(intent_id))
                charges = _get(_get(intent, "charges"), "data", [])
                return [charge_snapshot(charge) for charge in charges]
            page = self._client.v1.charges.list(params={"payment_intent": intent_id, "limit": 100})
            return [charge_snapshot(_plain(charge)) for charge in page.auto_paging_iter()]

    def list_disputes(self, intent_id: str) -> list[DisputeSnapshot]:
        """A PaymentIntent's disputes. localstripe has no disputes (404): none there."""
        if self._emulator:
            return []
        with _translated_errors("list disputes"):
            page = self._client.v1.disputes.list(params={"payment_intent": intent_id, "limit": 100})
            return [dispute_snapshot(_plain(dispute)) for dispute in page.auto_paging_iter()]

    def parse_webhook(self, payload: bytes, signature: str) -> GatewayEvent:
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self._webhook_secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
        except (ValueError, AttributeError, stripe.SignatureVerificationError) as error:
            raise WebhookSignatureInvalid() from error
        _refuse_future_timestamp(signature)
        return self.event_from_payload(event.to_dict())

    def event_from_payload(self, payload: Mapping[str, Any]) -> GatewayEvent:
        data = dict(payload)
        obj = _get(_get(data, "data"), "object", {})
        if not isinstance(obj, Mapping) or not data.get("id") or not data.get("type"):
            # Signed with our secret yet not an event: refused like a forgery, never stored.
            raise WebhookSignatureInvalid("The payload is not a Stripe event")
        check_event_shape(data)
        try:
            return _event(data, obj)
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            # An object whose fields are not what Stripe sends (an amount "lots", ...).
            raise WebhookEventMalformed(f"The event's object cannot be read: {error}") from error


def _refuse_future_timestamp(signature: str) -> None:
    """Stripe's SDK refuses a signature older than the tolerance; this one refuses one from
    further ahead than it (a replayable event signed in advance, or a clock far off)."""
    stamps = [item[2:] for item in signature.split(",") if item.strip().startswith("t=")]
    try:
        signed_at = int(stamps[0].strip())
    except (IndexError, ValueError) as error:
        raise WebhookSignatureInvalid() from error
    if signed_at > time.time() + WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookSignatureInvalid("The signature's timestamp is in the future")


def _event(data: dict[str, Any], obj: Mapping[str, Any]) -> GatewayEvent:
    kind = obj.get("object")
    return GatewayEvent(
        id=str(data["id"]),
        type=str(data["type"]),
        created=int(data.get("created") or 0),
        object=obj,
        payload=data,
        intent=intent_snapshot(obj) if kind == "payment_intent" else None,
        refund=refund_snapshot(obj) if kind == "refund" else None,
        charge=charge_snapshot(obj) if kind == "charge" else None,
        dispute=dispute_snapshot(obj) if kind == "dispute" else None,
        refunds=_listed_refunds(obj) if kind == "charge" else None,
    )
