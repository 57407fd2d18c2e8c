"""The only module that imports the Stripe SDK: `StripeGateway`, the port's Stripe adapter.

Builds every request to real Stripe, at the API version pinned here, and translates Stripe
errors into domain outcomes: declined, invalid, or unknown (`snapshots` reads the answers).
Every POST carries an idempotency key derived from our own row.

One retry layer, ours: the SDK's own retries are off (`max_network_retries=0`), since a retry
below ours multiplies with it and resends requests that may still be queued at Stripe. Here a
read is retried after any failure, and a keyed write (with its same key) only when the earlier
send certainly ended (see `PaymentOutcomeUnknown.in_flight`). Refunds are not retried here:
`refunds.services` retries them, and leaves one that may be in flight for later settlement.
A 429 is not retried here either: the HTTP client below (`paced_http`, the shared rate limiter)
already waited it out as far as Stripe and STRIPE_RATE_LIMIT_MAX_WAIT allow.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from requests.exceptions import ConnectTimeout
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

import stripe
from shopkeeper.errors import (
    PaymentDeclined,
    PaymentOutcomeUnknown,
    PaymentRequestInvalid,
    WebhookEventMalformed,
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
from shopkeeper.payments.stripe.paced_http import PacedRequestsClient
from shopkeeper.payments.stripe.rate_limit import RateLimiter, Unlimited
from shopkeeper.payments.stripe.snapshots import (
    charge_snapshot,
    dispute_snapshot,
    gateway_event,
    intent_snapshot,
    plain,
    refund_snapshot,
)

logger = logging.getLogger(__name__)

# The API version stripe-python 16 is written for (its `_ApiVersion.CURRENT`): every request
# carries it as `Stripe-Version`, whatever the account's default. Change it with the SDK major.
STRIPE_API_VERSION = "2026-10-28.endive"
stripe.api_version = STRIPE_API_VERSION

WEBHOOK_TOLERANCE_SECONDS = 300
# Stripe accepts these refund reasons; ours ("other") travels in metadata only.
STRIPE_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
# Seconds before each retry of a call other than a refund create (see the module docstring).
RETRY_DELAYS = (0.5,)
NEVER_SENT = (ConnectTimeout, ConnectTimeoutError, NewConnectionError)
# The Events API's `types` filter takes at most this many types a request.
EVENT_TYPES_PER_REQUEST = 20


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


class StripeGateway:
    """Real Stripe. `emulator.EmulatorGateway` overrides the hooks below for localstripe."""

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        timeout: float = 10.0,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        limiter: RateLimiter | None = None,
        rate_limit_max_wait: float = 10.0,
    ) -> None:
        base_addresses: Any = {"api": api_base} if api_base else None
        self._client = stripe.StripeClient(
            secret_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses=base_addresses,
            max_network_retries=0,  # our retries are the only ones (see the module docstring)
            http_client=PacedRequestsClient(
                timeout=timeout,
                limiter=limiter or Unlimited(),
                max_wait=rate_limit_max_wait,
            ),
        )
        self._retry_delays = retry_delays
        self._webhook_secret = webhook_secret

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}()"

    # --- Hooks an emulator overrides ----------------------------------------------------
    def _shaped(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """A Stripe object in Stripe's documented shape (real Stripe: as it came)."""
        return obj

    def _with_card(self, snapshot: IntentSnapshot, intent: Mapping[str, Any]) -> IntentSnapshot:
        """Card brand and last4 where the answer lacks them (real Stripe: the expanded charge
        carries `payment_method_details`)."""
        return snapshot

    def _intent_create_params(self) -> dict[str, Any]:
        return {"automatic_payment_methods": {"enabled": True}}

    def _refund_reason(self, reason: str) -> dict[str, Any]:
        return {"reason": reason} if reason in STRIPE_REFUND_REASONS else {}

    # --- Calls --------------------------------------------------------------------------
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
                    return plain(method(*args, **kwargs))
            except PaymentOutcomeUnknown as error:
                rate_limited = isinstance(error.__cause__, stripe.RateLimitError)
                if delay is None or (error.in_flight and not read) or rate_limited:
                    raise
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _listed(self, operation: str, method: Callable[..., Any], **params: Any) -> Iterator[Any]:
        """Every page of a list, each object as a plain dict in Stripe's shape."""
        with _translated_errors(operation):
            page = method(params={**params, "limit": 100})
            for obj in page.auto_paging_iter():
                yield self._shaped(plain(obj))

    def _pages(
        self, operation: str, method: Callable[..., Any], **params: Any
    ) -> Iterator[list[Mapping[str, Any]]]:
        """A list one page (one request, 100 objects) at a time, each read retried like any
        read; the next page is asked for only when the caller wants it."""
        after: str | None = None
        while True:
            paging = {"limit": 100, **({"starting_after": after} if after else {})}
            page = self._call(operation, method, params={**params, **paging}, read=True)
            objects = [self._shaped(obj) for obj in page.get("data", [])]
            yield objects
            if not page.get("has_more") or not objects:
                return
            after = str(objects[-1]["id"])

    @staticmethod
    def _created(created_gte: int | None) -> dict[str, Any]:
        return {} if created_gte is None else {"created": {"gte": created_gte}}

    def _intent(self, intent: Mapping[str, Any]) -> IntentSnapshot:
        return intent_snapshot(self._shaped(intent))

    def create_payment_intent(
        self, *, amount: Money, order_number: str, capture_method: str, idempotency_key: str
    ) -> IntentSnapshot:
        params: dict[str, Any] = {
            "amount": amount.minor,
            "currency": amount.currency.lower(),
            "capture_method": capture_method,
            "metadata": {"order_number": order_number},
            **self._intent_create_params(),
        }
        intent = self._call(
            "create payment",
            self._client.v1.payment_intents.create,
            params=params,
            options={"idempotency_key": idempotency_key},
        )
        return self._intent(intent)

    def retrieve_payment_intent(self, intent_id: str) -> IntentSnapshot:
        intent = self._call(
            "retrieve payment",
            self._client.v1.payment_intents.retrieve,
            intent_id,
            params=self._retrieve_params(),
            read=True,
        )
        return self._with_card(self._intent(intent), intent)

    def _retrieve_params(self) -> dict[str, Any] | None:
        return {"expand": ["latest_charge"]}

    def confirm_payment_intent(
        self, intent_id: str, *, payment_method: str, idempotency_key: str
    ) -> IntentSnapshot:
        """Server-side confirmation with a method the browser tokenised."""
        intent = self._call(
            "confirm payment",
            self._client.v1.payment_intents.confirm,
            intent_id,
            params={"payment_method": payment_method},
            options={"idempotency_key": idempotency_key},
        )
        return self._with_card(self._intent(intent), intent)

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
        return self._intent(intent)

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> IntentSnapshot:
        intent = self._call(
            "cancel payment",
            self._client.v1.payment_intents.cancel,
            intent_id,
            options={"idempotency_key": idempotency_key},
        )
        return self._intent(intent)

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
            **self._refund_reason(reason),
        }
        refund = self._call(
            "refund",
            self._client.v1.refunds.create,
            params=params,
            options={"idempotency_key": idempotency_key},
            retry=False,  # refunds.services retries it: one layer
        )
        return refund_snapshot(self._shaped(refund))

    def retrieve_refund(self, refund_id: str) -> RefundSnapshot:
        refund = self._call(
            "retrieve refund", self._client.v1.refunds.retrieve, refund_id, read=True
        )
        return refund_snapshot(self._shaped(refund))

    def list_refunds(self, intent_id: str) -> list[RefundSnapshot]:
        listed = self._listed(
            "list refunds", self._client.v1.refunds.list, payment_intent=intent_id
        )
        return [refund_snapshot(refund) for refund in listed]

    def list_payment_intents(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[IntentSnapshot]]:
        pages = self._pages(
            "list payments", self._client.v1.payment_intents.list, **self._created(created_gte)
        )
        for page in pages:
            yield [intent_snapshot(intent) for intent in page]

    def list_account_charges(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[ChargeSnapshot]]:
        pages = self._pages(
            "list charges", self._client.v1.charges.list, **self._created(created_gte)
        )
        for page in pages:
            yield [charge_snapshot(charge) for charge in page]

    def list_account_refunds(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[RefundSnapshot]]:
        pages = self._pages(
            "list refunds", self._client.v1.refunds.list, **self._created(created_gte)
        )
        for page in pages:
            yield [refund_snapshot(refund) for refund in page]

    def list_account_disputes(
        self, *, created_gte: int | None = None
    ) -> Iterator[list[DisputeSnapshot]]:
        pages = self._pages(
            "list disputes", self._client.v1.disputes.list, **self._created(created_gte)
        )
        for page in pages:
            yield [dispute_snapshot(dispute) for dispute in page]

    def list_charges(self, intent_id: str) -> list[ChargeSnapshot]:
        listed = self._listed(
            "list charges", self._client.v1.charges.list, payment_intent=intent_id
        )
        return [charge_snapshot(charge) for charge in listed]

    def list_disputes(self, intent_id: str) -> list[DisputeSnapshot]:
        listed = self._listed(
            "list disputes", self._client.v1.disputes.list, payment_intent=intent_id
        )
        return [dispute_snapshot(dispute) for dispute in listed]

    def list_events(
        self, *, created_gte: int, types: Collection[str]
    ) -> Iterator[list[GatewayEvent]]:
        """Stripe's Events API, `types` 20 a listing (Stripe's most), each page one request."""
        wanted = sorted(set(types))
        for start in range(0, len(wanted), EVENT_TYPES_PER_REQUEST):
            pages = self._pages(
                "list events",
                self._client.v1.events.list,
                types=wanted[start : start + EVENT_TYPES_PER_REQUEST],
                **self._created(created_gte),
            )
            for page in pages:
                yield self._readable_events(page)

    def _readable_events(self, listed: Iterable[Mapping[str, Any]]) -> list[GatewayEvent]:
        """The listed events as GatewayEvents; one that cannot be read is logged and left out,
        as its webhook would be refused (WebhookEventMalformed)."""
        events = []
        for payload in listed:
            try:
                events.append(self.event_from_payload(payload))
            except (WebhookSignatureInvalid, WebhookEventMalformed) as error:
                logger.warning("Stripe event %s left out: %s", payload.get("id"), error.detail)
        return events

    def parse_webhook(self, payload: bytes, signature: str) -> GatewayEvent:
        """What `stripe.Webhook.construct_event` checks (the SDK's own signature check), without
        the StripeObject tree it builds and we would turn back into a dict: 1.4 of the 1.7 ms a
        webhook spent here, on every delivery, duplicates included."""
        try:
            body = payload.decode("utf-8")
            stripe.WebhookSignature.verify_header(
                body, signature, self._webhook_secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
            event = json.loads(body)
        except (ValueError, AttributeError, stripe.SignatureVerificationError) as error:
            raise WebhookSignatureInvalid() from error
        if not isinstance(event, dict):
            raise WebhookSignatureInvalid()
        _refuse_future_timestamp(signature)
        return self.event_from_payload(event)

    def event_from_payload(self, payload: Mapping[str, Any]) -> GatewayEvent:
        return gateway_event(payload, self._shaped)


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
