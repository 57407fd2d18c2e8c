"""Our books against Stripe's, one PaymentIntent at a time. Pure Python: no Django, no Stripe.

Both sides arrive as plain facts. Stripe is the authority on money: a difference says what
Stripe shows, what we hold, and how it can be put right. Either by recording what Stripe proves
through the ordinary services (the PaymentIntent, a refund, a dispute), or by sending again a
refund Stripe never received (same idempotency key, so never twice), or not at all: when our
books show money Stripe does not, or amounts disagree on the append-only ledger, a person looks.
"""

from __future__ import annotations

from dataclasses import replace

from shopkeeper.disputes.rules import DisputeOutcome, DisputeStatus, is_newer, outcome_of
from shopkeeper.payments.gateway import DisputeSnapshot, IntentSnapshot
from shopkeeper.payments.states import FINISHED_INTENT_STATUSES
from shopkeeper.reconciliation.compare_refunds import refund_differences
from shopkeeper.reconciliation.facts import (
    Difference,
    Fix,
    Kind,
    LedgerFacts,
    OurDispute,
    StripeFacts,
    money_text,
)
from shopkeeper.reconciliation.facts import difference as _diff

MONEY_HOLDING_INTENT = frozenset({"requires_capture", "succeeded"})


def compare_payment(ours: LedgerFacts | None, stripe: StripeFacts | None) -> list[Difference]:
    """Every difference between our books and Stripe's for one PaymentIntent."""
    if stripe is None:
        return [] if ours is None else [_missing_at_stripe(ours), *_attention(ours)]
    if ours is None:
        return _unknown_intent(stripe.intent)
    if ours.flag_reason:
        flagged = _diff(ours, Kind.PAYMENT_FLAGGED, ours.flag_reason, stripe.intent.status)
        return [flagged, *_attention(ours)]
    remainders = capture_remainders(ours, stripe)
    return [
        *_intent_differences(ours, stripe, remainders),
        *refund_differences(ours, stripe, remainders),
        *_dispute_differences(ours, stripe),
        *_attention(ours),
    ]


def _attention(ours: LedgerFacts) -> list[Difference]:
    """Each open flag on the order stands as a difference until a person resolves it."""
    return [
        _diff(ours, Kind.NEEDS_ATTENTION, f"{code}: {detail}", "", subject=f"{code} {subject}")
        for code, subject, detail in ours.attention
    ]


def _missing_at_stripe(ours: LedgerFacts) -> Difference:
    return _diff(ours, Kind.PAYMENT_MISSING_AT_STRIPE, ours.intent_status, "no such PaymentIntent")


def _unknown_intent(intent: IntentSnapshot) -> list[Difference]:
    """A PaymentIntent of ours (it names an order) unknown here matters only if it holds money."""
    if not intent.order_number or intent.status not in MONEY_HOLDING_INTENT:
        return []
    held = money_text(intent.amount, intent.currency)
    return [
        Difference(
            Kind.PAYMENT_MISSING_HERE,
            intent.id,
            intent.order_number,
            "no payment",
            f"{intent.status} {held}",
        )
    ]


def capture_remainders(ours: LedgerFacts, stripe: StripeFacts) -> frozenset[str]:
    """Refunds that are localstripe's way of releasing the uncaptured rest of a partial capture.

    localstripe books that rest as a refund of the charge. Stripe does not (its charge reports
    `amount_captured`), and every refund Stripe makes of a PaymentIntent's charge names the
    PaymentIntent; localstripe's capture remainder does not, nor does it carry our metadata.
    Once our ledger has the capture, its amount must also be what we recorded as released.
    At most one per PaymentIntent, the earliest.
    """
    if stripe.intent.status != "succeeded":
        return frozenset()
    known = {row.stripe_refund_id for row in ours.refund_rows} | set(ours.refunds)
    candidates = sorted(
        (
            refund
            for refund in stripe.refunds
            if not refund.payment_intent_id
            and not refund.metadata.get("refund_key")
            and refund.id not in known
            and (not ours.capture or refund.amount == ours.release)
        ),
        key=lambda refund: (refund.created, refund.id),
    )
    return frozenset(refund.id for refund in candidates[:1])


def captured_at_stripe(stripe: StripeFacts, remainders: frozenset[str] = frozenset()) -> int:
    """What Stripe captured: its captured charges, less a localstripe capture remainder."""
    if stripe.intent.status != "succeeded":
        return 0
    charges = [c for c in stripe.charges if c.status == "succeeded" and c.captured]
    if not charges:
        return min(stripe.intent.amount_received or stripe.intent.amount, stripe.intent.amount)
    released = sum(refund.amount for refund in stripe.refunds if refund.id in remainders)
    return sum(charge.amount_captured for charge in charges) - released


def proven_intent(ours: LedgerFacts, stripe: StripeFacts) -> IntentSnapshot:
    """The PaymentIntent with the captured amount Stripe's charges prove, for `apply_intent`.

    (localstripe's PaymentIntent reports the captured amount less every refund since.)
    """
    captured = captured_at_stripe(stripe, capture_remainders(ours, stripe))
    return replace(stripe.intent, amount_received=captured)


def expected_movements(
    ours: LedgerFacts, stripe: StripeFacts, remainders: frozenset[str]
) -> dict[str, int]:
    """The ledger movements Stripe proves, by kind, as `apply_intent` would record them."""
    intent = stripe.intent
    if intent.status == "requires_capture":
        return {"authorization": intent.amount_capturable or intent.amount}
    if intent.status == "succeeded":
        captured = captured_at_stripe(stripe, remainders)
        return {
            "authorization": intent.amount,
            "capture": captured,
            "release": max(intent.amount - captured, 0),
        }
    if intent.status == "canceled":
        # A canceled PaymentIntent proves a hold only through an uncaptured charge; without
        # one (canceled before payment, or an emulator without charges) ours stands.
        held = [c.amount for c in stripe.charges if c.status == "succeeded" and not c.captured]
        authorized = sum(held) if held else ours.authorization
        return {"authorization": authorized, "void": max(authorized - ours.release, 0)}
    return {}


def _intent_differences(
    ours: LedgerFacts, stripe: StripeFacts, remainders: frozenset[str]
) -> list[Difference]:
    intent = stripe.intent
    differences = []
    if ours.intent_status != intent.status:
        stale = ours.intent_status in FINISHED_INTENT_STATUSES  # Stripe never leaves a final status
        fix = Fix.NONE if stale else Fix.APPLY_INTENT
        differences.append(
            _diff(ours, Kind.INTENT_STATUS, ours.intent_status, intent.status, fix=fix)
        )
    expected = expected_movements(ours, stripe, remainders)
    recorded = {
        "authorization": ours.authorization,
        "capture": ours.capture,
        "release": ours.release,
        "void": ours.void,
    }
    for movement, have in recorded.items():
        want = expected.get(movement, 0)
        if want == have:
            continue
        kind, fix = Kind.MOVEMENT_AMOUNT, Fix.NONE
        if not have:
            kind, fix = Kind.MOVEMENT_MISSING, Fix.APPLY_INTENT
        elif not want:
            kind = Kind.MOVEMENT_NOT_AT_STRIPE
        shown = (money_text(have, ours.currency), money_text(want, intent.currency))
        differences.append(_diff(ours, kind, *shown, fix=fix, subject=movement))
    return differences


def _dispute_differences(ours: LedgerFacts, stripe: StripeFacts) -> list[Difference]:
    """Each Stripe dispute in our books with its status; on the ledger, held back for its
    amount and given back once closed in the shop's favour (a lost one stays held)."""
    recorded = {dispute.id: dispute for dispute in ours.disputes}
    differences = [
        difference
        for dispute in stripe.disputes
        for difference in _dispute_difference(ours, dispute, recorded.get(dispute.id))
    ]
    at_stripe = {dispute.id for dispute in stripe.disputes}
    for mine in ours.disputes:
        if mine.id not in at_stripe:
            shown = f"{mine.status or 'on the ledger'} {money_text(mine.opened, ours.currency)}"
            differences.append(
                _diff(ours, Kind.DISPUTE_MISSING_AT_STRIPE, shown, "none", stripe_id=mine.id)
            )
    return differences


def _dispute_difference(
    ours: LedgerFacts, dispute: DisputeSnapshot, mine: OurDispute | None
) -> list[Difference]:
    shown = f"{dispute.status} {money_text(dispute.amount, dispute.currency)}"
    apply = Fix.APPLY_DISPUTE
    if mine is None or not mine.status:
        return [
            _diff(ours, Kind.DISPUTE_MISSING_HERE, "none", shown, fix=apply, stripe_id=dispute.id)
        ]
    if mine.status != dispute.status:
        fix = (
            apply if _known(dispute.status) and is_newer(mine.status, dispute.status) else Fix.NONE
        )
        return [_diff(ours, Kind.DISPUTE_STATUS, mine.status, shown, fix=fix, stripe_id=dispute.id)]
    released = dispute.amount if outcome_of(dispute.status) == DisputeOutcome.RELEASED else 0
    if (mine.opened, mine.released) == (dispute.amount, released):
        return []
    held = f"held {money_text(mine.opened, ours.currency)}"
    held += f", given back {money_text(mine.released, ours.currency)}" if mine.released else ""
    return [_diff(ours, Kind.DISPUTE_AMOUNT, held, shown, stripe_id=dispute.id)]


def _known(status: str) -> bool:
    return status in set(DisputeStatus)
