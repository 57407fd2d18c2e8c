"""When a card payment is charged (`SHOPKEEPER_CAPTURE`): pure rules, no Django, no Stripe.

- `automatic`: charged at checkout (Stripe `capture_method=automatic`);
- `manual`: authorised at checkout, captured by staff (`capture_method=manual`);
- `on_fulfillment`: authorised at checkout (`capture_method=manual`), captured by the worker
  when the order is fully shipped, for what shipped plus shipping (docs/fulfilment.md).

The mode is the payment's, recorded with it (`Payment.capture_method` and
`Payment.capture_on_fulfillment`), so changing the setting never changes an order placed before.
"""

from __future__ import annotations

from enum import StrEnum


class CaptureMode(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"
    ON_FULFILLMENT = "on_fulfillment"


def stripe_capture_method(mode: CaptureMode | str) -> str:
    """The PaymentIntent's `capture_method` for a mode: only `automatic` charges at once."""
    return "automatic" if CaptureMode(mode) == CaptureMode.AUTOMATIC else "manual"


def mode_of(capture_method: str, *, on_fulfillment: bool) -> CaptureMode:
    """A recorded payment's mode, from its Stripe capture method and our own mark."""
    if on_fulfillment:
        return CaptureMode.ON_FULFILLMENT
    return CaptureMode.MANUAL if capture_method == "manual" else CaptureMode.AUTOMATIC
