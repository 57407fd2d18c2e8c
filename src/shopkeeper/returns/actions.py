"""What a member of staff may do next with a return: one pure answer for the back office.

Like `orders.actions` for an order: a button is offered only when the role allows it *and* the
return's state would accept it, so it never leads to a refusal the rules could have predicted.
No Django, no Stripe.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from shopkeeper.accounts.permissions import Permission
from shopkeeper.refunds.rules import COUNTED_STATUSES
from shopkeeper.returns.states import RETURN_TRANSITIONS, ReturnStatus


class ReturnAction(StrEnum):
    RECEIVE = "receive"
    REFUND = "refund"
    REJECT = "reject"


def return_actions(
    status: ReturnStatus | str,
    *,
    refund_status: str | None,
    received_units: int,
    permissions: Collection[Permission | str],
) -> list[str]:
    """Receive a requested return; refund a received one with units back; reject either
    while no refund is under way or made (`refund_status`: its latest refund's status)."""
    allowed = {str(p) for p in permissions}
    if Permission.RETURNS_MANAGE not in allowed:
        return []
    status = ReturnStatus(status)
    refund_live = refund_status in COUNTED_STATUSES
    actions: list[str] = []
    if status == ReturnStatus.REQUESTED:
        actions.append(ReturnAction.RECEIVE)
    if (
        Permission.ORDERS_REFUND in allowed
        and status == ReturnStatus.RECEIVED
        and received_units > 0
        and not refund_live
    ):
        actions.append(ReturnAction.REFUND)
    if ReturnStatus.REJECTED in RETURN_TRANSITIONS[status] and not refund_live:
        actions.append(ReturnAction.REJECT)
    return [str(action) for action in actions]
