"""The order timeline in words staff read at a glance: what happened, to how much money, by whom.

Events come from `orders_view.selectors.order_events` (audit entries and ledger movements); this
module only names them.
"""

from __future__ import annotations

from typing import Any

LEDGER_TITLES = {
    "authorization": "Card authorized",
    "capture": "Money captured",
    "release": "Authorization released",
    "void": "Authorization voided",
    "refund": "Money refunded",
    "refund_reversal": "Refund reversed, money back with the shop",
    "dispute": "Payment disputed",
    "dispute_closed": "Dispute closed",
}
AUDIT_TITLES = {
    "order.placed": "Order placed",
    "order.abandoned": "Checkout abandoned",
    "order.cancelled": "Order cancelled",
    "order.expired": "Unpaid order expired and cancelled",
    "order.late_payment_returned": "Payment after cancellation given back",
    "order.captured": "Capture requested",
    "payment.started": "Payment started",
    "payment.pending": "Payment pending",
    "payment.authorized": "Payment authorized",
    "payment.paid": "Payment received",
    "payment.failed": "Payment failed",
    "payment.voided": "Payment voided",
    "payment.partially_refunded": "Payment partially refunded",
    "payment.refunded": "Payment refunded in full",
    "payment.flagged": "Payment flagged for review",
    "payment.duplicate": "Paid twice: a second payment needs a refund",
    "order.dispute.created": "Customer disputed the payment",
    "order.dispute.won": "Dispute won, money back with the shop",
    "order.dispute.lost": "Dispute lost, the disputed money is gone",
    "order.dispute.closed": "Dispute closed",
    "order.shipped": "Shipped",
    "order.shipment.delivered": "Delivered",
    "order.closed": "Order closed: everything shipped or refunded, the money settled",
    "order.note": "Note",
    "order.return.requested": "Return requested",
    "order.return.received": "Return received",
    "order.return.refunded": "Return refunded",
    "order.return.rejected": "Return rejected",
}
# Keys of an event's details worth a line under its title, in this order.
DETAIL_KEYS = (
    "reason",
    "note",
    "text",
    "carrier",
    "tracking_number",
    "error",
    "failure_message",
    "attention",
)
# Refund reasons are codes; everything else in details is already words.
REASON_LABELS = {
    "requested_by_customer": "Requested by customer",
    "duplicate": "Duplicate charge",
    "fraudulent": "Fraudulent",
    "other": "Other",
}
TIMES = "\u00d7"  # the multiplication sign, as in "2 (times) MUG-1"
# Why a return line comes back (returns.rules.REASONS), as the order page shows it.
RETURN_REASON_LABELS = {
    "damaged": "Damaged",
    "wrong_item": "Wrong item",
    "not_as_described": "Not as described",
    "no_longer_needed": "No longer needed",
    "other": "Other",
}
TONES = {
    "ledger.capture": "good",
    "ledger.refund": "mixed",
    "ledger.refund_reversal": "bad",
    "ledger.dispute": "bad",
    "payment.failed": "bad",
    "payment.flagged": "bad",
    "payment.duplicate": "bad",
    "order.dispute.created": "bad",
    "order.dispute.lost": "bad",
    "order.dispute.won": "good",
    "order.cancelled": "ended",
}


def describe(event: dict[str, Any]) -> dict[str, Any]:
    kind: str = event.get("type", "")
    details: dict[str, Any] = event.get("details") or {}
    amount = None
    if event.get("amount") is not None:
        amount = f"{event['amount']} {event.get('currency', '')}".strip()
    elif details.get("amount"):
        amount = str(details["amount"])
    notes = _line_notes(details, event.get("after") or {})
    notes += [
        REASON_LABELS.get(str(details[key]), str(details[key]))
        for key in DETAIL_KEYS
        if details.get(key)
    ]
    return {
        "at": event.get("at"),
        "title": title_of(kind),
        "amount": amount,
        "actor": event.get("actor") or "",
        "notes": notes,
        "tone": TONES.get(kind, "refund" if kind.startswith("order.refund.") else ""),
        "type": kind,
    }


def _line_notes(details: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """A return's lines ([sku, quantity] or [sku, quantity, reason]), what was restocked
    ({sku: quantity}), and who asked: in words."""
    notes = []
    if after.get("source") == "customer":
        notes.append("Asked by the customer")
    lines = details.get("lines")
    if isinstance(lines, list) and lines:
        shown = []
        for line in lines:
            if not isinstance(line, list | tuple) or len(line) < 2:
                continue
            sku, quantity, *reason = line
            why = ""
            if reason:
                label = RETURN_REASON_LABELS.get(str(reason[0]), str(reason[0]))
                why = f" ({label.lower()})"
            shown.append(f"{quantity} {TIMES} {sku}{why}")
        notes += [", ".join(shown)] if shown else []
    restocked = details.get("restocked")
    if isinstance(restocked, dict) and restocked:
        notes.append("Restocked " + ", ".join(f"{n} {TIMES} {sku}" for sku, n in restocked.items()))
    return notes


def title_of(kind: str) -> str:
    if kind.startswith("ledger."):
        return LEDGER_TITLES.get(kind.removeprefix("ledger."), kind)
    if kind.startswith("order.refund."):
        return "Refund " + kind.removeprefix("order.refund.").replace("_", " ")
    return AUDIT_TITLES.get(kind, kind.replace(".", " ").replace("_", " ").capitalize())


def timeline(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Newest first: what staff look for is what happened last."""
    return [describe(event) for event in reversed(events)]
