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


class InvalidAmount(InvalidInput):
    code = "invalid_amount"
    title = "Invalid amount"


class UnsupportedCurrency(InvalidInput):
    code = "unsupported_currency"
    title = "Unsupported currency"


class IllegalTransition(Conflict):
    code = "illegal_transition"
    title = "This status change is not allowed"
