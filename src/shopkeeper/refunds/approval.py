"""Whether a refund needs a manager's approval: the sums the limit rule needs, and what to say.

`request_refund` asks `check_approval` under the order's lock and, taken by `lock_staff`, the
requester's own row, inside the transaction that reserves the refund; the refund dialog asks the
same function through `preview_refund` (without locks: a preview promises nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from shopkeeper.accounts.actors import Actor
from shopkeeper.money import Money, amount_fields
from shopkeeper.orders.lookups import get_order
from shopkeeper.orders.models import Order
from shopkeeper.refunds.limits import configured_daily_limits, configured_limits
from shopkeeper.refunds.rules import (
    ApprovalCheck,
    ApprovalReason,
    LineRequest,
    plan_refund,
    refund_approval,
)
from shopkeeper.refunds.selectors import (
    order_facts,
    unapproved_by_staff_minor,
    unapproved_on_order_minor,
)

DAY = timedelta(hours=24)
APPROVAL = "a manager's approval"


def lock_staff(actor: Actor) -> None:
    """Lock the requester's user row, after the order's and before any refund's.

    Refunds by one person on different orders then queue here, so the daily sum each one reads
    includes the others'. FOR NO KEY UPDATE: rows that merely reference the user are not held up.
    """
    if getattr(actor, "pk", None) is None:
        return
    users = get_user_model().objects.select_for_update(no_key=True).filter(pk=actor.pk)
    list(users.values_list("pk", flat=True))


def has_daily_limit(actor: Actor) -> bool:
    """Whether the actor's own refunds over 24 hours matter (their role has a daily limit)."""
    return getattr(actor, "pk", None) is not None and (
        getattr(actor, "role", "") in configured_daily_limits()
    )


def check_approval(*, order: Order, actor: Actor, amount: Money) -> ApprovalCheck:
    staff_id = getattr(actor, "pk", None)
    day = (
        unapproved_by_staff_minor(
            staff_id=staff_id, currency=amount.currency, since=timezone.now() - DAY
        )
        if staff_id is not None
        else 0
    )
    return approval_for(
        actor,
        amount,
        order_unapproved_minor=unapproved_on_order_minor(order),
        day_unapproved_minor=day,
    )


def approval_for(
    actor: Actor, amount: Money, *, order_unapproved_minor: int, day_unapproved_minor: int
) -> ApprovalCheck:
    """`check_approval` with its sums already read (a refund request reads them with the rest)."""
    return refund_approval(
        getattr(actor, "role", ""),
        amount,
        order_unapproved_minor=order_unapproved_minor,
        actor_day_unapproved_minor=day_unapproved_minor,
        limits=configured_limits(),
        daily_limits=configured_daily_limits(),
    )


def preview_refund(
    *,
    order_number: str,
    actor: Actor,
    amount: object = None,
    lines: Sequence[LineRequest] = (),
    include_shipping: bool = False,
) -> dict[str, Any]:
    """What a refund request would refund and whether it would wait for approval."""
    order = get_order(order_number)
    plan = plan_refund(
        order_facts(order), amount=amount, lines=tuple(lines), include_shipping=include_shipping
    )
    check = check_approval(order=order, actor=actor, amount=plan.amount)
    return {
        **amount_fields("amount", plan.amount.minor, plan.amount.currency),
        "currency": plan.amount.currency,
        "needs_approval": check.needed,
        "reasons": [str(reason) for reason in check.reasons],
        "message": approval_message(check, plan.amount.currency),
    }


def approval_outlook(*, order: Order, actor: Actor) -> str:
    """Before any amount is chosen: how much this person may refund here without approval."""
    check = check_approval(order=order, actor=actor, amount=Money(1, order.currency))
    if ApprovalReason.NO_LIMIT_SET in check.reasons:
        return approval_message(check, order.currency)
    left = _allowance(check)
    if left is None:
        return ""
    if left == 0:
        return f"Any refund here now needs {APPROVAL}: your limit is used up."
    return (
        f"Up to {Money(left, order.currency)} can be refunded here without {APPROVAL}; "
        "above that the refund waits for one."
    )


def approval_message(check: ApprovalCheck, currency: str) -> str:
    """One sentence for the person asking for the refund."""
    if ApprovalReason.NO_LIMIT_SET in check.reasons:
        return (
            f"No refund limit is set for {currency} for your role: every refund in {currency} "
            f"needs {APPROVAL}."
        )
    if not check.needed:
        return (
            "" if _allowance(check) is None else "Within your limit: this refund needs no approval."
        )
    because = []
    if ApprovalReason.ORDER_LIMIT in check.reasons:
        left = Money(check.order_left_minor or 0, currency)
        because.append(f"the {left} you may still refund on this order alone")
    if ApprovalReason.DAILY_LIMIT in check.reasons:
        left = Money(check.daily_left_minor or 0, currency)
        because.append(f"the {left} you may still refund alone within 24 hours")
    return f"This refund will need {APPROVAL}: it is more than {' and '.join(because)}."


def _allowance(check: ApprovalCheck) -> int | None:
    lefts = [left for left in (check.order_left_minor, check.daily_left_minor) if left is not None]
    return min(lefts) if lefts else None
