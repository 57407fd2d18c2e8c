"""The order administration tests' admin API client (paths under /api/admin) and role list.

Rows (staff, tokens, orders in every state) come from tests/factories.py.
"""

from __future__ import annotations

from typing import Any

from django.test import Client

from shopkeeper.orders.models import Order
from tests.factories import staff, token_for

ROLES = ("owner", "manager", "support", "viewer")


def intent_id(order: Order) -> str:
    return order.payments.get().intent_id


class Api:
    """JSON calls to the admin API with a bearer token, as programs make them."""

    def __init__(self, raw_token: str) -> None:
        self.client = Client()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {raw_token}"}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/admin{path}", params, **self.auth)

    def post(self, path: str, body: Any = None, **headers: Any) -> Any:
        return self.client.post(
            f"/api/admin{path}",
            body if body is not None else {},
            content_type="application/json",
            **self.auth,
            **headers,
        )


def api_as(role: str) -> Api:
    return Api(token_for(staff(role)))
