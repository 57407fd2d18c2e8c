"""Stripe's statuses have one spelling: the enums of `payments/stripe_statuses.py`."""

from __future__ import annotations

import ast
from pathlib import Path

import shopkeeper
from shopkeeper.payments.stripe.snapshots import intent_snapshot, refund_snapshot
from shopkeeper.payments.stripe_statuses import (
    ChargeStatus,
    DisputeStatus,
    IntentStatus,
    StripeRefundStatus,
)

SRC = Path(shopkeeper.__file__).parent
HOME = SRC / "payments" / "stripe_statuses.py"
# Words that are Stripe's alone (pending, succeeded, failed, canceled, processing and lost are
# also our own states' values, spelled by our own enums).
OUR_WORDS = {"pending", "succeeded", "failed", "canceled", "processing", "lost"}
STRIPE_ONLY = {
    status.value
    for enum in (IntentStatus, ChargeStatus, StripeRefundStatus, DisputeStatus)
    for status in enum
} - OUR_WORDS


def test_no_module_but_the_enums_spells_a_stripe_status():
    found = []
    for path in SRC.rglob("*.py"):
        if path == HOME or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and node.value in STRIPE_ONLY:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}")
    assert not found, found


def test_snapshots_carry_the_enums():
    intent = intent_snapshot({"id": "pi_1", "status": "requires_capture"})
    refund = refund_snapshot({"id": "re_1", "status": "requires_action"})
    assert intent.status is IntentStatus.REQUIRES_CAPTURE
    assert refund.status is StripeRefundStatus.REQUIRES_ACTION
