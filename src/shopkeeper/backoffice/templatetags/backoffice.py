"""Status badges and money for back-office templates.

A badge's tone says what the status means for the shop's money at a glance: green is settled
in the shop's favour, amber waits on someone, red went wrong, grey is over.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

TONES: dict[str, dict[str, str]] = {
    "order": {
        "pending": "waiting",
        "processing": "info",
        "cancelled": "ended",
        "closed": "ended",
    },
    "payment": {
        "pending": "waiting",
        "authorized": "info",
        "paid": "good",
        "partially_refunded": "mixed",
        "refunded": "returned",
        "voided": "ended",
        "failed": "bad",
    },
    "refund": {
        "awaiting_approval": "attention",
        "pending": "waiting",
        "succeeded": "good",
        "failed": "bad",
        "rejected": "ended",
        "canceled": "ended",
    },
    "fulfillment": {
        "unfulfilled": "waiting",
        "partially_fulfilled": "info",
        "fulfilled": "good",
    },
    "shipment": {"shipped": "info", "delivered": "good"},
    "return": {
        "requested": "attention",
        "received": "waiting",
        "refunded": "returned",
        "rejected": "ended",
    },
    "reconcile": {
        "running": "waiting",
        "ok": "good",
        "differences": "attention",
        "failed": "bad",
    },
}

CARD_BRANDS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
}


def status_label(value: str) -> str:
    return (value or "unknown").replace("_", " ").capitalize()


@register.simple_tag
def badge(kind: str, value: str) -> SafeString:
    """`{% badge "payment" order.payment_status %}`: a coloured label for a status."""
    tone = TONES.get(kind, {}).get(value, "ended")
    return format_html(
        '<span class="badge badge-{}" data-{}-status="{}">{}</span>',
        tone,
        kind,
        value,
        status_label(value),
    )


@register.filter
def label(value: str) -> str:
    return status_label(value)


@register.filter
def card_brand(brand: str) -> str:
    return CARD_BRANDS.get((brand or "").lower(), (brand or "Card").capitalize())


@register.simple_tag
def card(payment: dict[str, Any] | None) -> str:
    """ "Visa •••• 4242", or "the card" when Stripe did not tell us which."""
    if not payment or not payment.get("card_last4"):
        return "the card"
    return f"{card_brand(payment.get('card_brand', ''))} •••• {payment['card_last4']}"
