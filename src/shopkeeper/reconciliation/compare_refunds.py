"""Refunds at Stripe against our refund rows and ledger. Pure Python: no Django, no Stripe.

A Stripe refund is ours when it carries our row's Stripe id or the key we sent as metadata. A
pending row without Stripe's answer is in doubt: found by its key, it is settled from what
Stripe says; not found (and not in flight) it never reached Stripe and is sent again with the
same idempotency key.
"""

from __future__ import annotations

from shopkeeper.payments.gateway import RefundSnapshot
from shopkeeper.payments.stripe_statuses import LIVE_REFUND_STATUSES
from shopkeeper.reconciliation.facts import (
    Difference,
    Fix,
    Kind,
    LedgerFacts,
    OurRefund,
    StripeFacts,
    money_text,
)
from shopkeeper.reconciliation.facts import difference as _diff
from shopkeeper.refunds.rules import RefundStatus, can_move_refund, refund_status_for_stripe

# Refunds that move money, or may still: recorded here even when they later fail.


def _our_refund_key(refund: RefundSnapshot) -> str:
    return str(refund.metadata.get("refund_key", ""))


def _row_for(refund: RefundSnapshot, rows: tuple[OurRefund, ...]) -> OurRefund | None:
    """Our row for a Stripe refund: by Stripe's id, else by the key we sent as metadata."""
    by_id = next((row for row in rows if row.stripe_refund_id == refund.id), None)
    key = _our_refund_key(refund)
    return by_id or next((row for row in rows if key and row.key == key), None)


def refund_differences(
    ours: LedgerFacts, stripe: StripeFacts, remainders: frozenset[str]
) -> list[Difference]:
    differences: list[Difference] = []
    matched: set[int] = set()
    # Oldest first, so that of two refunds carrying one key the first made is ours.
    for refund in sorted(stripe.refunds, key=lambda refund: (refund.created, refund.id)):
        if refund.id in remainders:
            continue
        row = _row_for(refund, ours.refund_rows)
        twin = row is not None and (
            row.id in matched or row.stripe_refund_id not in ("", refund.id)
        )
        if row is None or twin:
            differences.extend(_unknown_refund(ours, refund, row))
            continue
        matched.add(row.id)
        differences.extend(_matched_refund(ours, row, refund))
    at_stripe = {refund.id for refund in stripe.refunds}
    for row in ours.refund_rows:
        if row.id not in matched:
            differences.extend(_unmatched_row(ours, row, at_stripe))
    rows = {row.stripe_refund_id for row in ours.refund_rows}
    for refund_id, amount in ours.refunds.items():
        if refund_id not in at_stripe and refund_id not in rows:
            shown = f"{money_text(amount, ours.currency)} on the ledger"
            differences.append(
                _diff(ours, Kind.REFUND_MISSING_AT_STRIPE, shown, "none", stripe_id=refund_id)
            )
    return differences


def _refund_shown(refund: RefundSnapshot) -> str:
    return f"{refund.status} {money_text(refund.amount, refund.currency)}"


def _unknown_refund(
    ours: LedgerFacts, refund: RefundSnapshot, twin: OurRefund | None
) -> list[Difference]:
    """A Stripe refund no row of ours accounts for. One carrying the key of a row that already
    has another Stripe refund is a duplicate made at Stripe: a person must look."""
    if refund.status not in LIVE_REFUND_STATUSES:
        return []  # failed or canceled: no money moved, nothing to record
    mine = "none" if twin is None else f"a second refund under the key of refund {twin.id}"
    fix = Fix.SETTLE_REFUND if twin is None else Fix.NONE
    shown = _refund_shown(refund)
    return [_diff(ours, Kind.REFUND_MISSING_HERE, mine, shown, fix=fix, stripe_id=refund.id)]


def _matched_refund(ours: LedgerFacts, row: OurRefund, refund: RefundSnapshot) -> list[Difference]:
    """One of our refunds and Stripe's: its status, its amount, and what the ledger holds."""
    target = refund_status_for_stripe(refund.status)

    def about(kind: Kind, mine: str, theirs: str, fix: Fix = Fix.NONE) -> Difference:
        return _diff(ours, kind, mine, theirs, fix=fix, stripe_id=refund.id, refund_id=row.id)

    if not row.stripe_refund_id and row.status == RefundStatus.PENDING:
        mine = f"refund {row.id} pending, Stripe's answer lost"
        return [about(Kind.REFUND_IN_DOUBT, mine, _refund_shown(refund), Fix.SETTLE_REFUND)]
    differences = []
    if row.status != target:
        fix = Fix.SETTLE_REFUND if can_move_refund(row.status, target) else Fix.NONE
        mine = f"refund {row.id} {row.status}"
        differences.append(about(Kind.REFUND_STATUS, mine, refund.status, fix))
    if row.amount != refund.amount:
        amounts = (
            money_text(row.amount, ours.currency),
            money_text(refund.amount, refund.currency),
        )
        differences.append(about(Kind.REFUND_AMOUNT, *amounts))
    on_ledger = ours.refunds.get(refund.id, 0)
    proven = refund.amount if target == RefundStatus.SUCCEEDED else 0
    if row.status == target and on_ledger != proven:
        held = (money_text(on_ledger, ours.currency), money_text(proven, refund.currency))
        differences.append(about(Kind.REFUND_LEDGER, *held))
    return differences


def _unmatched_row(ours: LedgerFacts, row: OurRefund, at_stripe: set[str]) -> list[Difference]:
    """One of our refunds Stripe does not list (by id or by our key)."""
    mine = f"refund {row.id} {row.status} {money_text(row.amount, ours.currency)}"
    if row.status == RefundStatus.PENDING and not row.stripe_refund_id:
        if row.in_flight:
            return []  # its request may still be on its way
        return [
            _diff(
                ours,
                Kind.REFUND_NOT_SENT,
                mine,
                "no refund carries its key",
                fix=Fix.RESEND_REFUND,
                refund_id=row.id,
            )
        ]
    live = row.status in (RefundStatus.PENDING, RefundStatus.SUCCEEDED)
    if live and row.stripe_refund_id and row.stripe_refund_id not in at_stripe:
        return [
            _diff(
                ours,
                Kind.REFUND_MISSING_AT_STRIPE,
                mine,
                "none",
                stripe_id=row.stripe_refund_id,
                refund_id=row.id,
            )
        ]
    return []
