"""Reads of payment state: balances are always derived from the ledger."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from shopkeeper.orders.models import Order
from shopkeeper.payments.capture_modes import CaptureMode, mode_of
from shopkeeper.payments.ledger import Balance, EntryKind, Movement, balance_of
from shopkeeper.payments.models import LedgerEntry, Payment


@dataclass(frozen=True, slots=True)
class LedgerRow:
    payment_id: int
    kind: str
    amount_minor: int
    external_id: str


@dataclass(slots=True)
class OrderLedger:
    """An order's ledger rows, read once in a transaction that holds the order's lock, with
    the rows the transaction adds: every balance it needs without reading the ledger again."""

    rows: list[LedgerRow] = field(default_factory=list)

    @classmethod
    def from_json(cls, rows: Iterable[Mapping[str, Any]] | None) -> OrderLedger:
        return cls([LedgerRow(**row) for row in rows or ()])

    def balance(self) -> Balance:
        return balance_of(Movement(row.kind, row.amount_minor) for row in self.rows)

    def payment_balance(self, payment_id: int) -> Balance:
        return balance_of(
            Movement(row.kind, row.amount_minor)
            for row in self.rows
            if row.payment_id == payment_id
        )

    def has(self, kind: EntryKind | str, external_id: str) -> bool:
        return any(row.kind == kind and row.external_id == external_id for row in self.rows)

    def captured_payment_ids(self) -> set[int]:
        return {row.payment_id for row in self.rows if row.kind == EntryKind.CAPTURE}

    def add(self, entry: LedgerEntry) -> None:
        self.rows.append(
            LedgerRow(entry.payment_id, entry.kind, entry.amount_minor, entry.external_id)
        )


def ledger_rows_sql(order_id: str) -> str:
    """For a statement written by hand (a hot path's, whose ORM form would be compiled again on
    every request): the order's ledger rows as a JSON array, as `OrderLedger.from_json` takes
    them; `order_id` is an SQL expression."""
    return f"""ARRAY(
        SELECT jsonb_build_object('payment_id', e.payment_id, 'kind', e.kind,
                                  'amount_minor', e.amount_minor, 'external_id', e.external_id)
        FROM {LedgerEntry._meta.db_table} e WHERE e.order_id = {order_id} ORDER BY e.id)"""


def order_ledger(order_id: int) -> OrderLedger:
    rows = LedgerEntry.objects.filter(order_id=order_id).order_by("id")
    fields = ("payment_id", "kind", "amount_minor", "external_id")
    return OrderLedger([LedgerRow(*row) for row in rows.values_list(*fields)])


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


def order_capture_mode(order: Order) -> CaptureMode:
    """When `order`'s payment is charged: as its first PaymentIntent was (a retry's new
    PaymentIntent keeps the order's mode), or for a new order as SHOPKEEPER_CAPTURE says now."""
    first = Payment.objects.filter(order=order).order_by("id").first()
    if first is None:
        return CaptureMode(settings.SHOPKEEPER_CAPTURE)
    return mode_of(first.capture_method, on_fulfillment=first.capture_on_fulfillment)
