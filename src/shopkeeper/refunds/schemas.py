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


class DecisionIn(Schema):
    note: str = ""


class RefundWithOrderOut(Schema):
    refund: RefundOut
    order: OrderOut
