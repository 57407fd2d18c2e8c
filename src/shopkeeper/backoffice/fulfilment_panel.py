"""The order page's shipments and returns: what each row shows and which buttons it offers.

Read from the order's detail (the API's), so the page and the API never disagree: `ship` and
`create_return` come from its `available_actions`, a return's buttons from its own state
(`returns.actions`), a delivery from the shipment's state table.
"""

from __future__ import annotations

from typing import Any

from shopkeeper.accounts.permissions import Permission, can, permissions_of
from shopkeeper.backoffice.timeline import RETURN_REASON_LABELS
from shopkeeper.fulfilment.states import SHIPMENT_TRANSITIONS, ShipmentStatus
from shopkeeper.refunds.rules import RefundStatus
from shopkeeper.returns.actions import return_actions
from shopkeeper.returns.rules import REASONS
from shopkeeper.returns.states import ReturnStatus

RETURN_REASONS = tuple((code, RETURN_REASON_LABELS[code]) for code in REASONS)


def fulfilment_context(detail: dict[str, Any], user: Any) -> dict[str, Any]:
    names = {line["id"]: line["name"] for line in detail["lines"]}
    refunds = {refund["id"]: refund for refund in detail["refunds"]}
    fulfil = can(user, Permission.ORDERS_FULFIL)
    return {
        "shipments": [_shipment(s, names, fulfil) for s in detail["shipments"]],
        "returns": [_return(r, names, refunds, user) for r in reversed(detail["returns"])],
        "ship_lines": [line for line in detail["lines"] if line.get("left_to_ship")],
        "return_lines": [line for line in detail["lines"] if line.get("returnable_quantity")],
        "return_reasons": RETURN_REASONS,
        "can_note": can(user, Permission.ORDERS_NOTE),
    }


def _named(lines: list[dict[str, Any]], names: dict[int, str]) -> list[dict[str, Any]]:
    return [{**line, "name": names.get(line["line_id"], line["sku"])} for line in lines]


def _shipment(shipment: dict[str, Any], names: dict[int, str], fulfil: bool) -> dict[str, Any]:
    deliverable = ShipmentStatus.DELIVERED in SHIPMENT_TRANSITIONS[shipment["status"]]
    return {
        **shipment,
        "lines": _named(shipment["lines"], names),
        "can_deliver": fulfil and deliverable,
    }


def _return(
    returned: dict[str, Any],
    names: dict[int, str],
    refunds: dict[int, dict[str, Any]],
    user: Any,
) -> dict[str, Any]:
    refund = refunds.get(returned["refund_id"]) if returned["refund_id"] else None
    refund_status = refund["status"] if refund else None
    lines = [
        {**line, "reason_label": RETURN_REASON_LABELS.get(line["reason"], line["reason"])}
        for line in _named(returned["lines"], names)
    ]
    return {
        **returned,
        "lines": lines,
        "refund": refund,
        "awaiting_approval": refund_status == RefundStatus.AWAITING_APPROVAL
        and returned["status"] == ReturnStatus.RECEIVED,
        "actions": set(
            return_actions(
                returned["status"],
                refund_status=refund_status,
                received_units=sum(line["received_quantity"] for line in lines),
                permissions=permissions_of(user),
            )
        ),
    }
