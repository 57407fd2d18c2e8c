"""What may be returned, received and refunded. Pure Python, no Django, no Stripe.

Only shipped units come back, and each shipped unit through one return at most: a line's
returnable quantity is what shipped minus what other returns (requested, received or
refunded; not rejected) already hold. What is received may be less than was asked (the parcel
held fewer), never more. A return's refund is for the received units only, made by the refund
engine (limits, approval, exactly once), which prices them from the order's lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shopkeeper.errors import Conflict, InvalidInput

REASONS = ("damaged", "wrong_item", "not_as_described", "no_longer_needed", "other")
MAX_NOTE_LENGTH = 1000


class QuantityExceedsReturnable(InvalidInput):
    code = "quantity_exceeds_returnable"
    title = "More is asked to return than was shipped and is not in another return"


class InvalidReturnLines(InvalidInput):
    code = "invalid_return_lines"
    title = "The return names lines that are not valid for this order"


class InvalidReturnReason(InvalidInput):
    code = "invalid_return_reason"
    title = "The reason must be damaged, wrong_item, not_as_described, no_longer_needed or other"


class ReceivedExceedsRequested(InvalidInput):
    code = "received_exceeds_requested"
    title = "More is received than the return asked for"


class NothingReceived(Conflict):
    code = "return_nothing_received"
    title = "Nothing of this return was received: there is nothing to refund"


@dataclass(frozen=True, slots=True)
class LineReturnable:
    sku: str
    shipped: int
    held_by_returns: int = 0  # units in this order's other requested/received/refunded returns

    @property
    def returnable(self) -> int:
        return max(self.shipped - self.held_by_returns, 0)


@dataclass(frozen=True, slots=True)
class ReturnLineRequest:
    sku: str
    quantity: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReceivedLine:
    sku: str
    quantity: int
    restock: bool


def ensure_note(note: str) -> str:
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise InvalidInput(f"The note is longer than {MAX_NOTE_LENGTH} characters")
    return note


def plan_return(
    lines: Sequence[LineReturnable], requested: Sequence[ReturnLineRequest]
) -> tuple[ReturnLineRequest, ...]:
    """The return's lines as asked, once each SKU is known, each reason valid, each quantity
    at least 1 and within what is returnable (a SKU named twice counts twice)."""
    if not requested:
        raise InvalidReturnLines("Name at least one line to return")
    by_sku = {line.sku: line for line in lines}
    asked: dict[str, int] = {}
    for line in requested:
        if line.sku not in by_sku:
            raise InvalidReturnLines(f"This order has no line {line.sku!r}", sku=line.sku)
        if line.reason not in REASONS:
            raise InvalidReturnReason(reason=line.reason)
        if line.quantity < 1:
            raise InvalidReturnLines(f"Return at least 1 of {line.sku}", sku=line.sku)
        asked[line.sku] = asked.get(line.sku, 0) + line.quantity
    for sku, quantity in asked.items():
        returnable = by_sku[sku].returnable
        if quantity > returnable:
            raise QuantityExceedsReturnable(
                f"{quantity} of {sku} asked, {returnable} returnable"
                " (shipped and not in another return)",
                sku=sku,
                returnable=returnable,
            )
    return tuple(requested)


def plan_receipt(
    requested: Mapping[str, int], received: Sequence[ReceivedLine] | None
) -> tuple[ReceivedLine, ...]:
    """What came back: as listed (each SKU once, 0 to what was asked), or (None) everything
    asked, not restocked. SKUs the return did not ask for are refused."""
    if received is None:
        return tuple(ReceivedLine(sku, quantity, False) for sku, quantity in requested.items())
    seen: set[str] = set()
    for line in received:
        if line.sku not in requested:
            raise InvalidReturnLines(f"This return has no line {line.sku!r}", sku=line.sku)
        if line.sku in seen:
            raise InvalidReturnLines(f"{line.sku} is listed twice", sku=line.sku)
        seen.add(line.sku)
        if line.quantity < 0:
            raise InvalidReturnLines(f"A received quantity of {line.sku} is 0 or more")
        if line.quantity > requested[line.sku]:
            raise ReceivedExceedsRequested(
                f"{line.quantity} of {line.sku} received, {requested[line.sku]} asked",
                sku=line.sku,
            )
    return tuple(received)


def refund_quantities(received: Sequence[ReceivedLine]) -> dict[str, int]:
    """The units a return's refund is for: what was received, by SKU."""
    quantities = {line.sku: line.quantity for line in received if line.quantity}
    if not quantities:
        raise NothingReceived()
    return quantities
