from __future__ import annotations

from ninja import Field, Schema


class ShipLineIn(Schema):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int


class ShipmentIn(Schema):
    # None (or left out): everything not yet shipped.
    lines: list[ShipLineIn] | None = None
    carrier: str = ""
    tracking_number: str = ""
