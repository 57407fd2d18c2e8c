"""Reads of disputes: whether an order is disputed now, and its disputes as the API shows them."""

from __future__ import annotations

from typing import Any

from shopkeeper.disputes.models import Dispute
from shopkeeper.disputes.rules import DisputeOutcome
from shopkeeper.money import amount_fields
from shopkeeper.orders.models import Order


def has_open_dispute(order: Order) -> bool:
    """An order is disputed while one of its disputes is open (a lost one is over: the money
    is gone, and the ledger keeps it unrefundable)."""
    return Dispute.objects.filter(order=order, outcome=DisputeOutcome.OPEN).exists()


def dispute_data(dispute: Dispute) -> dict[str, Any]:
    """One dispute as the API shows it (`DisputeOut`)."""
    return {
        "stripe_dispute_id": dispute.stripe_dispute_id,
        "stripe_charge_id": dispute.stripe_charge_id,
        "status": dispute.status,
        "outcome": dispute.outcome,
        **amount_fields("amount", dispute.amount_minor, dispute.currency),
        "currency": dispute.currency,
        "reason": dispute.reason,
        "created_at": dispute.created_at,
        "closed_at": dispute.closed_at,
    }


def order_disputes(order: Order) -> list[dict[str, Any]]:
    return [dispute_data(dispute) for dispute in Dispute.objects.filter(order=order).order_by("id")]
