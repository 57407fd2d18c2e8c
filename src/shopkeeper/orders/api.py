from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from shopkeeper.accounts.access import requires
from shopkeeper.accounts.api_auth import api_auth
from shopkeeper.accounts.permissions import Permission
from shopkeeper.orders import selectors
from shopkeeper.orders.schemas import OrderOut

router = Router(tags=["orders"], auth=api_auth)


@router.get("/{number}", response=OrderOut)
@requires(Permission.ORDERS_VIEW)
def get_order(request: HttpRequest, number: str) -> dict[str, Any]:
    return selectors.order_detail(selectors.get_order(number))
