"""The refund rules: what may be refunded, how much, by whom. Pure Python, no Django, no Stripe.

Money that can still be refunded is derived, never stored: captured - refunded - what refunds
still open (pending at Stripe or awaiting approval) have reserved. A refund either names an
amount, or names order lines (and perhaps the shipping fee), in which case the amount is computed
from the lines. A refund that would take the order's unapproved refunds above the actor's
limit, or the actor's own over the last 24 hours above the daily limit, waits for a second
person's approval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shopkeeper.errors import (
    Conflict,
    Forbidden,
    InvalidAmount,
    InvalidInput,
    NotFound,
)
from shopkeeper.money import Money
from shopkeeper.payments.states import CAPTURED_STATUSES, PaymentStatus
from shopkeeper.payments.stripe_statuses import StripeRefundStatus
from shopkeeper.transitions import StateMachine


class RefundStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELED = "canceled"


_R = RefundStatus
REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    # Approved (then sent to Stripe) or rejected by a second person.
    _R.AWAITING_APPROVAL: frozenset({_R.PENDING, _R.REJECTED}),
    # Sent, or about to be sent, to Stripe: Stripe's answer settles it.
    _R.PENDING: frozenset({_R.SUCCEEDED, _R.FAILED, _R.CANCELED}),
    # Stripe can report a refund failed after it succeeded (the card was closed, ...).
    _R.SUCCEEDED: frozenset({_R.FAILED}),
    _R.FAILED: frozenset(),
    _R.REJECTED: frozenset(),
    _R.CANCELED: frozenset(),
}

# Open refunds hold back their amount from what is refundable.
RESERVING_STATUSES = frozenset({_R.PENDING, _R.AWAITING_APPROVAL})
# Refunds whose lines count as refunded (or about to be): everything not given up.
COUNTED_STATUSES = frozenset({_R.PENDING, _R.AWAITING_APPROVAL, _R.SUCCEEDED})
# Refunds that count toward the limits if nobody approved them: money gone or maybe leaving
# (pending at Stripe). Awaiting approval counts for nothing until a second person decides.
LIMIT_COUNTED_STATUSES = frozenset({_R.PENDING, _R.SUCCEEDED})

REASONS = frozenset({"requested_by_customer", "duplicate", "fraudulent", "other"})
MAX_NOTE_LENGTH = 1000

# Stripe's refund statuses in ours: requires_action is still open.
_FROM_STRIPE = {
    StripeRefundStatus.PENDING: _R.PENDING,
    StripeRefundStatus.REQUIRES_ACTION: _R.PENDING,
    StripeRefundStatus.SUCCEEDED: _R.SUCCEEDED,
    StripeRefundStatus.FAILED: _R.FAILED,
    StripeRefundStatus.CANCELED: _R.CANCELED,
}


class RefundNotFound(NotFound):
    code = "refund_not_found"
    title = "No refund with this id"


class RefundExceedsRefundable(Conflict):
    code = "refund_exceeds_refundable"
    title = "The refund is larger than what can still be refunded"


class OrderNotCaptured(Conflict):
    code = "order_not_captured"
    title = "Only captured money can be refunded"


class InvalidReason(InvalidInput):
    code = "invalid_reason"
    title = "The reason must be requested_by_customer, duplicate, fraudulent or other"


class InvalidRefundLines(InvalidInput):
    code = "invalid_refund_lines"
    title = "The refund names lines that are not valid for this order"


class ShippingAlreadyRefunded(Conflict):
    code = "shipping_already_refunded"
    title = "The shipping fee has already been refunded"


class RefundNotAwaitingApproval(Conflict):
    code = "refund_not_awaiting_approval"
    title = "This refund is not awaiting approval"


class ApproverIsRequester(Forbidden):
    code = "approver_is_requester"
    title = "A refund must be approved or rejected by someone other than its requester"


@dataclass(frozen=True, slots=True)
class LineFacts:
    """One order line as bought, and how many units of it refunds already claim."""

    unit_price_minor: int
    quantity: int
    refunded_quantity: int

    @property
    def refundable_quantity(self) -> int:
        return max(self.quantity - self.refunded_quantity, 0)


@dataclass(frozen=True, slots=True)
class OrderFacts:
    currency: str
    payment_status: str
    refundable_minor: int  # captured - refunded - reserved (- disputed)
    shipping_minor: int
    shipping_refunded: bool
    lines: Mapping[int, LineFacts]


@dataclass(frozen=True, slots=True)
class LineRequest:
    line_id: int
    quantity: int
    restock: bool = False


@dataclass(frozen=True, slots=True)
class PlannedLine:
    line_id: int
    quantity: int
    restock: bool
    amount_minor: int


@dataclass(frozen=True, slots=True)
class RefundPlan:
    amount: Money
    lines: tuple[PlannedLine, ...]
    include_shipping: bool


def refund_status_for_stripe(stripe_status: StripeRefundStatus) -> RefundStatus:
    try:
        return _FROM_STRIPE[stripe_status]
    except KeyError:
        raise ValueError(f"unknown Stripe refund status {stripe_status!r}") from None


_MACHINE = StateMachine(RefundStatus, REFUND_TRANSITIONS, kind="refund")
can_move_refund = _MACHINE.can_move
move_refund = _MACHINE.move


def ensure_captured(payment_status: PaymentStatus | str) -> None:
    """Only captured money is refunded; an authorisation is voided by cancelling instead."""
    status = PaymentStatus(payment_status)
    if status in CAPTURED_STATUSES:
        return
    if status == PaymentStatus.REFUNDED:
        raise RefundExceedsRefundable(
            "This order is refunded in full; nothing is left to refund", refundable="0"
        )
    if status == PaymentStatus.AUTHORIZED:
        raise OrderNotCaptured(
            "The payment is authorised but not captured: cancel the order to void it instead",
            payment_status=str(status),
        )
    raise OrderNotCaptured(
        f"The payment is {status}: nothing was captured", payment_status=str(status)
    )


def ensure_reason(reason: str, note: str) -> None:
    if reason not in REASONS:
        raise InvalidReason(reason=reason)
    if len(note) > MAX_NOTE_LENGTH:
        raise InvalidInput(f"The note is longer than {MAX_NOTE_LENGTH} characters")


def parse_refund_amount(amount: object, currency: str) -> Money:
    """A decimal string in the order's currency, more than zero, with no extra decimals."""
    money = Money.parse(amount, currency)  # type: ignore[arg-type]  # rejects non-strings
    if money.minor <= 0:
        raise InvalidAmount("A refund must be more than zero")
    return money


def plan_refund(
    facts: OrderFacts,
    *,
    amount: object = None,
    lines: Sequence[LineRequest] = (),
    include_shipping: bool = False,
) -> RefundPlan:
    """Check a refund request against the order; the amount it would refund, or a domain error.

    Without lines or shipping the amount is the one given, or everything still refundable.
    With lines (and/or shipping) the amount is computed from them; an amount given as well may
    be lower (a partial refund for the items) but never higher.
    """
    ensure_captured(facts.payment_status)
    planned = _plan_lines(facts, lines)
    if include_shipping and facts.shipping_refunded:
        raise ShippingAlreadyRefunded()
    if planned or include_shipping:
        computed = sum(line.amount_minor for line in planned)
        computed += facts.shipping_minor if include_shipping else 0
        money = Money(computed, facts.currency)
        if amount is not None:
            money = parse_refund_amount(amount, facts.currency)
            if money.minor > computed:
                raise InvalidAmount(
                    f"The amount is more than the selected items' total of "
                    f"{Money(computed, facts.currency)}"
                )
    elif amount is not None:
        money = parse_refund_amount(amount, facts.currency)
    else:
        money = Money(facts.refundable_minor, facts.currency)
    ensure_within_refundable(money, facts.refundable_minor)
    return RefundPlan(amount=money, lines=planned, include_shipping=include_shipping)


def ensure_within_refundable(money: Money, refundable_minor: int) -> None:
    if money.minor <= 0 or money.minor > refundable_minor:
        left = Money(max(refundable_minor, 0), money.currency)
        raise RefundExceedsRefundable(
            f"{money} is more than the {left} that can still be refunded"
            if money.minor > 0
            else "Nothing is left to refund",
            refundable=left.to_decimal_string(),
            refundable_minor=left.minor,
        )


def _plan_lines(facts: OrderFacts, lines: Sequence[LineRequest]) -> tuple[PlannedLine, ...]:
    seen: set[int] = set()
    planned = []
    for request in lines:
        line = facts.lines.get(request.line_id)
        if line is None:
            raise InvalidRefundLines(
                f"Line {request.line_id} is not part of this order", line_id=request.line_id
            )
        if request.line_id in seen:
            raise InvalidRefundLines(
                f"Line {request.line_id} is named twice", line_id=request.line_id
            )
        seen.add(request.line_id)
        if isinstance(request.quantity, bool) or request.quantity < 1:
            raise InvalidRefundLines(
                "Each refunded line needs a quantity of at least 1", line_id=request.line_id
            )
        if request.quantity > line.refundable_quantity:
            raise RefundExceedsRefundable(
                f"Only {line.refundable_quantity} of line {request.line_id} can still be refunded",
                line_id=request.line_id,
                refundable_quantity=line.refundable_quantity,
            )
        planned.append(
            PlannedLine(
                line_id=request.line_id,
                quantity=request.quantity,
                restock=bool(request.restock),
                amount_minor=line.unit_price_minor * request.quantity,
            )
        )
    return tuple(planned)


def refund_limit_minor(
    role: str, currency: str, limits: Mapping[str, Mapping[str, str]]
) -> int | None:
    """The largest refund `role` may make alone in `currency`; None means no limit.

    Roles missing from `limits` have no limit. A listed role has no refund power without
    approval in a currency its table does not name (limit 0): limits fail closed.
    """
    table = limits.get(role)
    if table is None:
        return None
    text = table.get(currency)
    return 0 if text is None else Money.parse(text, currency).minor


class ApprovalReason(StrEnum):
    ORDER_LIMIT = "order_limit"  # with the order's earlier unapproved refunds, above the limit
    DAILY_LIMIT = "daily_limit"  # with the actor's last 24 hours of them, above the daily limit
    NO_LIMIT_SET = "no_limit_set"  # the role's table names no limit for this currency


@dataclass(frozen=True, slots=True)
class ApprovalCheck:
    """Whether a refund needs a second person, and what is left to refund without one.

    `*_left_minor` is None where the role has no such limit.
    """

    reasons: tuple[ApprovalReason, ...]
    order_left_minor: int | None
    daily_left_minor: int | None

    @property
    def needed(self) -> bool:
        return bool(self.reasons)


def refund_approval(
    role: str,
    money: Money,
    *,
    order_unapproved_minor: int,
    actor_day_unapproved_minor: int,
    limits: Mapping[str, Mapping[str, str]],
    daily_limits: Mapping[str, Mapping[str, str]],
) -> ApprovalCheck:
    """Limits cannot be split: they cap sums, not single refunds.

    A refund goes ahead alone only if, added to the refunds on its order that nobody approved
    (`order_unapproved_minor`, whoever made them), it stays within the actor's role limit, and,
    added to what the actor refunded without approval over the last 24 hours in this currency
    (`actor_day_unapproved_minor`), within the role's daily limit. Refunds awaiting approval,
    approved, rejected or failed are not in those sums; refunds pending at Stripe are.
    """
    order_left = _left(refund_limit_minor(role, money.currency, limits), order_unapproved_minor)
    daily_limit = refund_limit_minor(role, money.currency, daily_limits)
    daily_left = _left(daily_limit, actor_day_unapproved_minor)
    reasons: list[ApprovalReason] = []
    if not _named(role, money.currency, limits) or not _named(role, money.currency, daily_limits):
        reasons.append(ApprovalReason.NO_LIMIT_SET)
    else:
        if order_left is not None and money.minor > order_left:
            reasons.append(ApprovalReason.ORDER_LIMIT)
        if daily_left is not None and money.minor > daily_left:
            reasons.append(ApprovalReason.DAILY_LIMIT)
    return ApprovalCheck(tuple(reasons), order_left, daily_left)


def _left(limit_minor: int | None, used_minor: int) -> int | None:
    return None if limit_minor is None else max(limit_minor - max(used_minor, 0), 0)


def _named(role: str, currency: str, limits: Mapping[str, Mapping[str, str]]) -> bool:
    """False when the role has a table that leaves this currency out (limits fail closed)."""
    table = limits.get(role)
    return table is None or currency in table


def may_decide(*, requester_id: int | None, decider_id: int | None) -> bool:
    """Four eyes: whoever asked for a refund above their limit cannot approve it themselves."""
    return decider_id is not None and requester_id != decider_id


def ensure_decider(*, requester_id: int | None, decider_id: int) -> None:
    if not may_decide(requester_id=requester_id, decider_id=decider_id):
        raise ApproverIsRequester()
