"""What the refund tests read back (ledger sums, refund counts) and their admin API client.

Rows (staff, tokens, paid orders) come from tests/factories.py.
"""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund


def refunded_minor(order: Order) -> int:
    kinds = LedgerEntry.objects.filter(order=order)
    refunds = sum(e.amount_minor for e in kinds if e.kind == "refund")
    return refunds - sum(e.amount_minor for e in kinds if e.kind == "refund_reversal")


def refund_count(order: Order, status: str | None = None) -> int:
    refunds = Refund.objects.filter(order=order)
    return (refunds.filter(status=status) if status else refunds).count()


class Api:
    """JSON calls to the admin API with a bearer token, as programs make them."""

    def __init__(self, raw_token: str) -> None:
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {raw_token}"}

    def post(self, path: str, body: Any = None, *, key: str | None = None) -> Any:
        headers = dict(self.headers)
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        return self.client.post(
            path, json.dumps(body or {}), content_type="application/json", **headers
        )

    def get(self, path: str) -> Any:
        return self.client.get(path, **self.headers)

    def refund(self, number: str, body: dict[str, Any], *, key: str | None = None) -> Any:
        return self.post(f"/api/admin/orders/{number}/refunds", body, key=key)
