"""Domain errors. Pure Python: the one mapping to HTTP lives in `shopkeeper.problems`.

Each error carries a stable `code` (clients and black-box checks match on it) and a message
that is safe to show to staff.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "domain_error"
    title: ClassVar[str] = "The request could not be carried out"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)


class InvalidInput(DomainError):
    """The request is well-formed but its content breaks a rule (HTTP 422)."""

    code = "invalid_input"
    title = "Invalid input"


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class BodyTooLarge(DomainError):
    """The request body is over SHOPKEEPER_MAX_BODY_BYTES (HTTP 413)."""

    code = "body_too_large"
    title = "The request body is too large"


class Conflict(DomainError):
    """The request is valid but the current state forbids it (HTTP 409)."""

    code = "conflict"
    title = "Conflict with the current state"


class Forbidden(DomainError):
    code = "permission_denied"
    title = "You do not have permission to do this"


class PaymentProviderUnavailable(DomainError):
    """Stripe could not be reached or answered with an unknown outcome (HTTP 503)."""

    code = "payment_provider_unavailable"
    title = "The payment provider is unavailable; try again shortly"


# What the payment provider answered (or did not): raised by the gateway, mapped in problems.py.


class PaymentDeclined(DomainError):
    """The card or bank said no; the message is safe to show the customer."""

    code = "payment_declined"
    title = "The payment was declined"


class PaymentRequestInvalid(DomainError):
    """Stripe rejected the request itself (4xx other than a decline)."""

    code = "payment_request_invalid"
    title = "The payment provider rejected the request"


class PaymentOutcomeUnknown(PaymentProviderUnavailable):
    """Timeout, 5xx, 429 or lost connection: the operation may or may not have happened.

    `in_flight`: the request may still be executing at Stripe (a timeout, or the connection
    lost after the request was sent), so sending it again now could do it twice, whatever the
    key: Stripe only replays a key once the first request has finished, localstripe never.
    False when the request certainly ended: Stripe answered 5xx or 429, or never received it
    (connection refused, connect timeout).
    """

    code = "payment_outcome_unknown"
    title = "The payment provider did not answer; the outcome is not known yet"

    def __init__(self, detail: str | None = None, *, in_flight: bool = True, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.in_flight = in_flight


class WebhookSignatureInvalid(DomainError):
    code = "invalid_signature"
    title = "The webhook signature is missing, invalid or too old"


class WebhookEventMalformed(DomainError):
    code = "malformed_event"
    title = "The webhook is signed but is not a well-formed Stripe event"


class InvalidAmount(InvalidInput):
    code = "invalid_amount"
    title = "Invalid amount"


class UnsupportedCurrency(InvalidInput):
    code = "unsupported_currency"
    title = "Unsupported currency"


class IllegalTransition(Conflict):
    code = "illegal_transition"
    title = "This status change is not allowed"
