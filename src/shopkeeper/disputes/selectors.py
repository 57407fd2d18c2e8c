"""Reads of disputes: whether an order is disputed now, and its disputes as the API shows them."""

from __future__ import annotations

from typing import Any

from shopkeeper.disputes.models import Dispute
from shopkeeper.money import amount_fields


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
