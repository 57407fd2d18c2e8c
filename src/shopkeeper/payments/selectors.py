"""Reads of payment state: balances are always derived from the ledger."""

from __future__ import annotations

from shopkeeper.orders.models import Order
from shopkeeper.payments.ledger import Balance, Movement, balance_of
from shopkeeper.payments.models import LedgerEntry, Payment


def order_balance(order: Order) -> Balance:
    rows = LedgerEntry.objects.filter(order=order).values_list("kind", "amount_minor")
    return balance_of(Movement(kind, amount) for kind, amount in rows)


def payment_balance(payment: Payment) -> Balance:
    """The balance of one PaymentIntent (an order may have had several attempts)."""
    rows = LedgerEntry.objects.filter(payment=payment).values_list("kind", "amount_minor")
    return balance_of(Movement(kind, amount) for kind, amount in rows)


def current_payment(order: Order) -> Payment | None:
    """The order's most recent PaymentIntent, if one was created."""
    return Payment.objects.filter(order=order).order_by("-id").first()
