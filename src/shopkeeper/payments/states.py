"""The payment state machine: a pure table and named guards, no Django, no Stripe.

Statuses are data: the table lists the allowed moves and `move_payment` refuses any other with
`IllegalTransition`. Staying in the same status is not a move and is always allowed, so that
replayed webhooks and retried requests are no-ops. See docs/state-machine.md.
"""

from __future__ import annotations

from enum import StrEnum

from shopkeeper.transitions import StateMachine


class PaymentStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    FAILED = "failed"


_P = PaymentStatus
PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    _P.PENDING: frozenset({_P.AUTHORIZED, _P.PAID, _P.FAILED, _P.VOIDED}),
    # A declined attempt can be retried with the same PaymentIntent.
    _P.FAILED: frozenset({_P.AUTHORIZED, _P.PAID, _P.VOIDED}),
    # Capture (in full or in part; the rest is released) or void the authorisation.
    _P.AUTHORIZED: frozenset({_P.PAID, _P.VOIDED}),
    _P.PAID: frozenset({_P.PARTIALLY_REFUNDED, _P.REFUNDED}),
    # A refund that Stripe reports as failed after it succeeded gives the money back to
    # the refundable balance, which is the only way back from refunded.
    _P.PARTIALLY_REFUNDED: frozenset({_P.REFUNDED, _P.PAID}),
    _P.REFUNDED: frozenset({_P.PARTIALLY_REFUNDED, _P.PAID}),
    # Voided is the end of an authorisation, but not of the order's money: a customer who pays
    # a cancelled order through another PaymentIntent (a retry racing its expiry) has paid, and
    # the order's copy follows its ledger, which never captures a voided authorisation. That
    # payment is flagged and given back (orders.late_payments).
    _P.VOIDED: frozenset({_P.AUTHORIZED, _P.PAID}),
}

# Payment statuses in which money has been captured and not all of it given back.
CAPTURED_STATUSES = frozenset({_P.PAID, _P.PARTIALLY_REFUNDED})
# Payment statuses in which the customer has not paid anything that is still held.
UNPAID_STATUSES = frozenset({_P.PENDING, _P.FAILED})


_MACHINE = StateMachine(PaymentStatus, PAYMENT_TRANSITIONS, kind="payment")
can_move_payment = _MACHINE.can_move
move_payment = _MACHINE.move
