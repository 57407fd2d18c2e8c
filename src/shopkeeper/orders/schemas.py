from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema


class OrderLineOut(Schema):
    id: int
    sku: str
    name: str
    quantity: int
    restocked_quantity: int
    # Units shipped, and units received back through returns.
    shipped_quantity: int = 0
    returned_quantity: int = 0
    unit_price: str
    unit_price_minor: int
    line_total: str
    line_total_minor: int


class PaymentOut(Schema):
    payment_intent_id: str
    capture_method: str
    # Captured by the worker once the order is fully shipped (SHOPKEEPER_CAPTURE=on_fulfillment).
    capture_on_fulfillment: bool
    intent_status: str
    card_brand: str
    card_last4: str
    flagged: bool
    flag_reason: str
    last_error: str


class RefundLineOut(Schema):
    line_id: int
    sku: str
    name: str
    quantity: int
    restock: bool
    amount: str
    amount_minor: int


class RefundOut(Schema):
    id: int
    order_number: str
    # awaiting_approval | pending | succeeded | failed | rejected | canceled
    status: str
    amount: str
    amount_minor: int
    currency: str
    reason: str
    note: str
    include_shipping: bool
    lines: list[RefundLineOut]
    stripe_refund_id: str | None
    # Why Stripe refused or failed it, safe to show staff; "" otherwise.
    failure_message: str
    # "shopkeeper", or "stripe" for a refund made in the Stripe dashboard.
    source: str
    attempts: int
    requested_by: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str
    created_at: datetime
    updated_at: datetime


class DisputeOut(Schema):
    stripe_dispute_id: str
    stripe_charge_id: str
    # Stripe's status: warning_needs_response | warning_under_review | needs_response |
    # under_review (open) | won | lost | warning_closed | prevented (closed).
    status: str
    # open | released (the money is the shop's again) | lost (the bank kept it).
    outcome: str
    amount: str
    amount_minor: int
    currency: str
    reason: str
    created_at: datetime
    closed_at: datetime | None


class ShipmentLineOut(Schema):
    line_id: int
    sku: str
    quantity: int


class ShipmentOut(Schema):
    id: int
    status: str
    lines: list[ShipmentLineOut]
    carrier: str
    tracking_number: str
    shipped_at: datetime
    delivered_at: datetime | None


class OrderReturnLineOut(Schema):
    line_id: int
    sku: str
    quantity: int
    reason: str
    received_quantity: int
    restock: bool


class OrderReturnOut(Schema):
    id: int
    status: str
    source: str
    created_at: datetime
    refund_id: int | None
    lines: list[OrderReturnLineOut]


class AttentionOut(Schema):
    # capture_after_void | void_after_capture | stripe_contradicts | refund_exceeds_captured |
    # payment_mismatch | authorization_expiring (orders.attention)
    code: str
    detail: str
    at: datetime


class OrderOut(Schema):
    number: str
    email: str
    status: str
    payment_status: str
    currency: str
    created_at: datetime
    shipping_address: dict[str, Any]
    lines: list[OrderLineOut]
    payment: PaymentOut | None
    subtotal: str
    subtotal_minor: int
    shipping: str
    shipping_minor: int
    grand_total: str
    grand_total_minor: int
    authorized: str
    authorized_minor: int
    captured: str
    captured_minor: int
    refunded: str
    refunded_minor: int
    refundable: str
    refundable_minor: int
    refunds: list[RefundOut] = []
    # True while a dispute (chargeback) is open.
    disputed: bool
    # Held back by disputes open or lost: never refundable.
    disputed_amount: str
    disputed_amount_minor: int
    disputes: list[DisputeOut] = []
    # unfulfilled | partially_fulfilled | fulfilled, from the lines (fulfilment.rules).
    fulfillment_status: str = "unfulfilled"
    shipments: list[ShipmentOut] = []
    returns: list[OrderReturnOut] = []
    # What the caller may do next (refund, capture, cancel, ship), from orders.actions and
    # fulfilment.rules.
    available_actions: list[str]
    # Why cancelling is refused now; only given to callers allowed to cancel.
    cancel_blocked_reason: str | None
    cancel_reason: str
    cancelled_at: datetime | None
    # True while Stripe's news contradicts our books or could not be booked: a person must look.
    needs_attention: bool = False
    attention: list[AttentionOut] = []
    # While an authorisation is open (authorised, not captured): when the shop acts on it
    # (authorised + SHOPKEEPER_AUTH_EXPIRE_AFTER, before Stripe lets it lapse); null otherwise.
    authorization_expires_at: datetime | None = None
    # True from SHOPKEEPER_AUTH_WARN_AFTER on, with the warning staff read.
    authorization_expiring: bool = False
    authorization_warning: str | None = None


class OrderSummaryOut(Schema):
    number: str
    email: str
    status: str
    payment_status: str
    currency: str
    grand_total: str
    grand_total_minor: int
    created_at: datetime
    needs_attention: bool = False
    authorization_expires_at: datetime | None = None
    authorization_expiring: bool = False
    authorization_warning: str | None = None


class OrderPageOut(Schema):
    items: list[OrderSummaryOut]
    # Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: str | None


class OrderEventOut(Schema):
    at: datetime
    # "audit" (who did what) or "ledger" (a money movement).
    source: str
    # The audit action ("order.cancelled") or "ledger.<kind>" ("ledger.capture").
    type: str
    actor: str
    amount: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    before: Any = None
    after: Any = None
    details: dict[str, Any]


class CancelIn(Schema):
    reason: str
    # Mail the customer that the order is cancelled (docs/emails.md).
    notify_customer: bool = True


class CaptureIn(Schema):
    # A decimal string in the order's currency; omitted: capture everything authorised.
    amount: str | None = None


class NoteIn(Schema):
    text: str


class NoteOut(Schema):
    id: int
    text: str
    author: str
    created_at: datetime
