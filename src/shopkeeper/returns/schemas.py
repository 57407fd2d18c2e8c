from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema

from shopkeeper.orders.schemas import RefundOut


class ReturnLineIn(Schema):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int
    reason: str


class ReturnIn(Schema):
    lines: list[ReturnLineIn]
    note: str = ""


class ReceivedLineIn(Schema):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int
    restock: bool = False


class ReceiveIn(Schema):
    # Left out: everything asked came back, nothing restocked.
    lines: list[ReceivedLineIn] | None = None


class ReturnRefundIn(Schema):
    include_shipping: bool = False
    notify_customer: bool = True


class RejectIn(Schema):
    note: str = ""


class ReturnLineOut(Schema):
    line_id: int
    sku: str
    quantity: int
    reason: str
    received_quantity: int
    restock: bool


class ReturnOut(Schema):
    id: int
    order_number: str
    status: str
    source: str
    note: str
    reject_note: str
    created_at: datetime
    received_at: datetime | None
    finished_at: datetime | None
    refund_id: int | None
    # The refund's own status: awaiting_approval, pending, succeeded, failed...
    refund_status: str | None
    lines: list[ReturnLineOut]


class ReturnPageOut(Schema):
    items: list[ReturnOut]
    next_cursor: str | None


class ReturnRefundOut(Schema):
    refund: RefundOut
    # `return` is a Python keyword: the field is `return` in JSON.
    return_: ReturnOut = Field(alias="return")

    model_config = {"populate_by_name": True}
