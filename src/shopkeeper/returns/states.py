"""Return statuses: a pure table, no Django, no Stripe (docs/state-machine.md).

A return is `requested` (by staff or by the customer), `received` when the goods are back (what
came back, and what was restocked, recorded line by line), `refunded` once its refund has
succeeded at Stripe, or `rejected` with a note (from requested, or after inspection). A refund
waiting for approval or for Stripe leaves the return `received`: the refund's own status says
why.
"""

from __future__ import annotations

from enum import StrEnum

from shopkeeper.transitions import StateMachine


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    RECEIVED = "received"
    REFUNDED = "refunded"
    REJECTED = "rejected"


_S = ReturnStatus
RETURN_TRANSITIONS: dict[ReturnStatus, frozenset[ReturnStatus]] = {
    _S.REQUESTED: frozenset({_S.RECEIVED, _S.REJECTED}),
    _S.RECEIVED: frozenset({_S.REFUNDED, _S.REJECTED}),
    _S.REFUNDED: frozenset(),
    _S.REJECTED: frozenset(),
}

# Returns whose lines hold back shipped units from another return: all but the rejected.
HOLDING_STATUSES = frozenset({_S.REQUESTED, _S.RECEIVED, _S.REFUNDED})
# Returns still waiting for staff: an order with one is not closed.
OPEN_STATUSES = frozenset({_S.REQUESTED, _S.RECEIVED})


class ReturnSource(StrEnum):
    STAFF = "staff"
    CUSTOMER = "customer"


_MACHINE = StateMachine(ReturnStatus, RETURN_TRANSITIONS, kind="return")
can_move_return = _MACHINE.can_move
move_return = _MACHINE.move
