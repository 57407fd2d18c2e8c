from __future__ import annotations

from ninja import Field, Schema

from shopkeeper.orders.schemas import OrderOut, RefundOut


class RefundLineIn(Schema):
    line_id: int
    quantity: int
    # Put the units back into stock once the money is refunded.
    restock: bool = False


class RefundIn(Schema):
    # A decimal string in the order's currency ("12.50"). Omitted: everything still refundable,
    # or, with lines/include_shipping, their total (an amount given with them may be lower).
    amount: str | int | float | None = Field(None, examples=["12.50"])
    lines: list[RefundLineIn] | None = None
    include_shipping: bool = False
    # requested_by_customer | duplicate | fraudulent | other
    reason: str
    note: str = ""
    # Mail the customer when the refund succeeds (docs/emails.md).
    notify_customer: bool = True


class RefundPreviewIn(Schema):
    # As in RefundIn, without the reason and note: what would be refunded, and by whom.
    amount: str | int | float | None = Field(None, examples=["12.50"])
    lines: list[RefundLineIn] | None = None
    include_shipping: bool = False


class RefundPreviewOut(Schema):
    amount: str
    amount_minor: int
    currency: str
    # True: the refund would wait for a manager's approval instead of going to Stripe.
    needs_approval: bool
    # order_limit | daily_limit | no_limit_set
    reasons: list[str]
    # One sentence for the person asking (empty when their role has no limits).
    message: str


class DecisionIn(Schema):
    note: str = ""


class RefundWithOrderOut(Schema):
    refund: RefundOut
    order: OrderOut
