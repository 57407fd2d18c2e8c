"""Reads of orders, shaped for the API and the back office."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet

from shopkeeper.accounts.actors import Actor
from shopkeeper.accounts.permissions import Permission, permissions_of
from shopkeeper.audit.models import AuditEntry
from shopkeeper.disputes.rules import DisputeOutcome
from shopkeeper.disputes.selectors import dispute_data
from shopkeeper.errors import InvalidInput
from shopkeeper.fulfilment.models import ShipmentLine
from shopkeeper.fulfilment.rules import (
    CANCEL_BLOCKED_SHIPPED,
    LineFulfilment,
    can_ship,
    fulfillment_status,
    line_facts,
)
from shopkeeper.fulfilment.selectors import shipment_data
from shopkeeper.keyset import decode_cursor, encode_cursor
from shopkeeper.money import amount_fields
from shopkeeper.orders.actions import OrderAction, available_actions, cancel_blocked_reason
from shopkeeper.orders.models import Attention, Order, OrderLine
from shopkeeper.orders_view import authorisations, queries
from shopkeeper.orders_view.detail_row import DetailRows, detail_rows
from shopkeeper.payments.ledger import Balance
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.refunds.rules import COUNTED_STATUSES, RESERVING_STATUSES
from shopkeeper.refunds.selectors import has_refund_in_progress, refund_data
from shopkeeper.refunds.selectors import reserved_minor as reserved_minor_of
from shopkeeper.returns.models import Return, ReturnLine
from shopkeeper.returns.rules import LineReturnable
from shopkeeper.returns.states import HOLDING_STATUSES, ReturnStatus


def _attention_data(flags: Iterable[Attention]) -> dict[str, Any]:
    shown = [{"code": flag.code, "detail": flag.detail, "at": flag.created_at} for flag in flags]
    return {"needs_attention": bool(shown), "attention": shown}


def order_detail(order: Order, *, actor: Actor | None = None) -> dict[str, Any]:
    """The order as the API and the back office show it, with what `actor` may do next: the
    order as it is now (read again, with everything below, in one statement)."""
    rows = detail_rows(order.pk)
    order, balance = rows.order, rows.ledger.balance()
    currency = order.currency
    reserved = sum(r.amount_minor for r, _ in rows.refunds if r.status in RESERVING_STATUSES)
    shipped = _shipped_by_line(rows.shipments)
    returned = _returned_by_line(rows.returns)
    detail: dict[str, Any] = {
        "number": order.number,
        "email": order.email,
        "status": order.status,
        "payment_status": order.payment_status,
        "currency": currency,
        "created_at": order.created_at,
        "shipping_address": order.shipping_address,
        "lines": [
            {
                **line_data(line, currency),
                "shipped_quantity": shipped.get(line.pk, 0),
                "returned_quantity": returned.get(line.pk, 0),
            }
            for line in rows.lines
        ],
        "payment": None if rows.payment is None else payment_data(rows.payment),
    }
    for name, minor in (
        ("subtotal", order.subtotal_minor),
        ("shipping", order.shipping_minor),
        ("grand_total", order.grand_total_minor),
        ("authorized", balance.authorized),
        ("captured", balance.captured),
        ("refunded", balance.refunded),
        # Refunds still open (pending, awaiting approval) hold back their amount, and so do
        # disputes open or lost.
        ("refundable", balance.refundable(reserved)),
        ("disputed_amount", balance.disputed),
    ):
        detail.update(amount_fields(name, minor, currency))
    in_progress = any(r.status in RESERVING_STATUSES for r, _ in rows.refunds)
    fulfilment = _line_fulfilment(rows, shipped)
    detail.update(
        actions_for(
            order,
            actor=actor,
            balance=balance,
            reserved_minor=reserved,
            in_progress=in_progress,
            fulfilment=fulfilment,
            has_shipments=bool(rows.shipments),
            returnable=_returnable_units(rows, shipped),
        )
    )
    detail["fulfillment_status"] = fulfillment_status(fulfilment)
    skus = {line.pk: line.sku for line in rows.lines}
    detail["shipments"] = [
        shipment_data(shipment, [(line, skus[line.order_line_id]) for line in lines])
        for shipment, lines in rows.shipments
    ]
    detail["returns"] = [
        {
            "id": returned_row.pk,
            "status": returned_row.status,
            "source": returned_row.source,
            "created_at": returned_row.created_at,
            "refund_id": returned_row.refund_id,
            "lines": [
                {
                    "line_id": line.order_line_id,
                    "sku": skus[line.order_line_id],
                    "quantity": line.quantity,
                    "reason": line.reason,
                    "received_quantity": line.received_quantity,
                    "restock": line.restock,
                }
                for line in lines
            ],
        }
        for returned_row, lines in rows.returns
    ]
    detail.update(_attention_data(rows.attention))
    detail.update(
        authorisations.authorisation_fields(authorisations.open_authorised_at(order, rows.payment))
    )
    detail["refunds"] = [refund_data(refund, lines=lines) for refund, lines in rows.refunds]
    detail["disputed"] = any(d.outcome == DisputeOutcome.OPEN for d in rows.disputes)
    detail["disputes"] = [dispute_data(dispute) for dispute in rows.disputes]
    return detail


def _shipped_by_line(shipments: Iterable[tuple[Any, list[ShipmentLine]]]) -> dict[int, int]:
    shipped: dict[int, int] = {}
    for _, lines in shipments:
        for line in lines:
            shipped[line.order_line_id] = shipped.get(line.order_line_id, 0) + line.quantity
    return shipped


def _returned_by_line(returns: Iterable[tuple[Return, list[ReturnLine]]]) -> dict[int, int]:
    """Units received back (returns received or refunded), by order line id."""
    returned: dict[int, int] = {}
    for returned_row, lines in returns:
        if returned_row.status in (ReturnStatus.RECEIVED, ReturnStatus.REFUNDED):
            for line in lines:
                returned[line.order_line_id] = (
                    returned.get(line.order_line_id, 0) + line.received_quantity
                )
    return returned


def _returnable_units(rows: DetailRows, shipped: dict[int, int]) -> int:
    """Shipped units no return holds yet (returns.rules: what may still come back)."""
    held: dict[int, int] = {}
    for returned_row, lines in rows.returns:
        if returned_row.status in HOLDING_STATUSES:
            for line in lines:
                held[line.order_line_id] = held.get(line.order_line_id, 0) + line.quantity
    return sum(
        LineReturnable(line.sku, shipped.get(line.pk, 0), held.get(line.pk, 0)).returnable
        for line in rows.lines
    )


def _line_fulfilment(rows: DetailRows, shipped: dict[int, int]) -> list[LineFulfilment]:
    refunded: dict[int, int] = {}
    through_returns: dict[int, int] = {}
    return_refunds = {r.refund_id for r, _ in rows.returns if r.refund_id is not None}
    for refund, lines in rows.refunds:
        if refund.status in COUNTED_STATUSES:
            for line in lines:
                refunded[line.order_line_id] = refunded.get(line.order_line_id, 0) + line.quantity
                if refund.pk in return_refunds:
                    through_returns[line.order_line_id] = (
                        through_returns.get(line.order_line_id, 0) + line.quantity
                    )
    return [
        line_facts(
            line, shipped=shipped, refunded=refunded, refunded_through_returns=through_returns
        )
        for line in rows.lines
    ]


def line_data(line: OrderLine, currency: str) -> dict[str, Any]:
    return {
        "id": line.pk,
        "sku": line.sku,
        "name": line.name,
        "quantity": line.quantity,
        "restocked_quantity": line.restocked_quantity,
        "shipped_quantity": 0,
        "returned_quantity": 0,
        **amount_fields("unit_price", line.unit_price_minor, currency),
        **amount_fields("line_total", line.line_total_minor, currency),
    }


def payment_data(payment: Payment) -> dict[str, Any]:
    return {
        "payment_intent_id": payment.intent_id,
        "capture_method": payment.capture_method,
        "capture_on_fulfillment": payment.capture_on_fulfillment,
        "intent_status": payment.intent_status,
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
        "flagged": payment.flagged,
        "flag_reason": payment.flag_reason,
        "last_error": payment.last_error,
    }


def actions_for(
    order: Order,
    *,
    actor: Actor | None,
    balance: Balance,
    reserved_minor: int | None = None,
    in_progress: bool | None = None,
    fulfilment: list[LineFulfilment] | None = None,
    has_shipments: bool = False,
    returnable: int = 0,
) -> dict[str, Any]:
    """`available_actions` for this caller, and why cancelling is refused when it is.

    The reason is only given to someone allowed to cancel: to others it explains nothing.
    `reserved_minor` and `in_progress` (open refunds) are read here unless given. `ship` is
    offered when something is left to ship (`fulfilment`, the lines' facts) and the rules allow;
    an order with a shipment is not cancelled (its goods come back through a return).
    """
    permissions = permissions_of(actor)
    reserved = reserved_minor_of(order) if reserved_minor is None else reserved_minor
    if in_progress is None:
        in_progress = has_refund_in_progress(order)
    reason = cancel_blocked_reason(
        order.status, order.payment_status, has_pending_refund=in_progress
    )
    actions = available_actions(
        order.status,
        order.payment_status,
        permissions,
        in_progress,
        refundable_minor=balance.refundable(reserved),
    )
    if has_shipments and reason is None:
        reason = CANCEL_BLOCKED_SHIPPED
        actions.remove(OrderAction.CANCEL) if OrderAction.CANCEL in actions else None
    if Permission.ORDERS_FULFIL in permissions and can_ship(
        order.status, order.payment_status, fulfilment or []
    ):
        actions.append(OrderAction.SHIP)
    if Permission.RETURNS_MANAGE in permissions and returnable > 0:
        actions.append(OrderAction.CREATE_RETURN)
    return {
        "available_actions": actions,
        "cancel_blocked_reason": reason if Permission.ORDERS_CANCEL in permissions else None,
        "cancel_reason": order.cancel_reason,
        "cancelled_at": order.cancelled_at,
    }


# --- the orders list ------------------------------------------------------------------------


class SearchTooShort(InvalidInput):
    code = "search_too_short"
    title = f"Search for at least {queries.MIN_PART} characters"


def list_orders(
    *,
    status: str | None = None,
    payment_status: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 25,
    needs_attention: bool | None = None,
    authorization_expiring: bool | None = None,
) -> dict[str, Any]:
    """Newest first, by keyset over (created_at, id): a page never shifts as orders arrive.

    `q` is an order number or a customer's e-mail (those orders), or else part of the number,
    of the e-mail or of the customer's name, ignoring case: a part of at least
    `queries.MIN_PART` characters (SearchTooShort otherwise);
    `needs_attention` keeps the orders flagged for a person (or, False, the others);
    `authorization_expiring` the orders whose authorisation is about to lapse (or the others).
    """
    orders = authorisations.with_authorised_at(Order.objects.order_by("-created_at", "-id"))
    if needs_attention is not None:  # True: from order_attention_keyset_idx
        orders = orders.filter(needs_attention=needs_attention)
    if authorization_expiring is not None:  # True: authorised orders, each probing its payment
        orders = authorisations.filter_expiring(orders, authorization_expiring)
    if status:
        orders = orders.filter(status=status)
    if payment_status:
        orders = orders.filter(payment_status=payment_status)
    if cursor:
        orders = orders.filter(queries.before(*decode_cursor(cursor)))
    term = q.strip() if q else ""
    page = _searched_page(orders, term, limit + 1) if term else list(orders[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {
        "items": [order_summary(order) for order in page],
        "next_cursor": encode_cursor(page[-1].created_at, page[-1].pk) if more else None,
    }


def _searched_page(orders: QuerySet[Any], term: str, size: int) -> list[Order]:
    """The first `size` orders of the list that `term` finds (orders_view.queries: which
    index answers which, and in what order they are tried).

    A whole number or e-mail finds exactly its orders. Any other term, those containing it:
    first among the list's newest `queries.window(size)` orders, which holds the whole page
    for any term in more than about one order in 80 there (the page is then those orders,
    read in list order and complete); for a rarer term, its orders' ids are looked up.
    """
    exactly = queries.exactly(term)
    if Order.objects.filter(exactly).exists():
        return list(orders.filter(exactly)[:size])
    if len(term) < queries.MIN_PART:
        raise SearchTooShort(
            f"Search for a whole order number or e-mail, or at least {queries.MIN_PART} "
            "characters of a number, an e-mail or a name"
        )
    containing = queries.containing(term)
    newest = orders.filter(queries.containing_read(term), queries.newest(orders, size))
    recent = list(newest[:size])
    if len(recent) == size:
        return recent
    found = queries.few(Order.objects.filter(containing).values_list("pk", flat=True))
    matching = orders.filter(pk__in=found) if found is not None else orders.filter(containing)
    return list(matching[:size])


def order_summary(order: Order) -> dict[str, Any]:
    return {
        "number": order.number,
        "email": order.email,
        "status": order.status,
        "payment_status": order.payment_status,
        "currency": order.currency,
        "created_at": order.created_at,
        "needs_attention": order.needs_attention,
        **amount_fields("grand_total", order.grand_total_minor, order.currency),
        **authorisations.authorisation_fields(getattr(order, "open_authorised_at", None)),
    }


# --- the timeline ---------------------------------------------------------------------------


def order_events(order: Order) -> list[dict[str, Any]]:
    """The order's history, oldest first: audit entries about it and its ledger movements."""
    # At the same instant the movement sorts before the audit entry that explains it.
    keyed = [((e.created_at, 1, e.seq), _audit_event(e)) for e in _audit_entries(order)]
    keyed += [
        ((e.created_at, 0, e.pk), _ledger_event(e)) for e in LedgerEntry.objects.filter(order=order)
    ]
    return [event for _, event in sorted(keyed, key=lambda pair: pair[0])]


def _audit_entries(order: Order) -> QuerySet[AuditEntry]:
    about_order = Q(target_type="order", target_id=order.number)
    return AuditEntry.objects.filter(about_order).order_by("seq")


def _audit_event(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.created_at,
        "source": "audit",
        "type": entry.action,
        "actor": entry.actor_email or "system",
        "before": entry.before,
        "after": entry.after,
        "details": entry.details or {},
    }


def _ledger_event(entry: LedgerEntry) -> dict[str, Any]:
    stripe_ids = {
        name: value
        for name, value in (
            ("payment_intent", entry.stripe_payment_intent_id),
            ("charge", entry.stripe_charge_id),
            ("refund", entry.stripe_refund_id),
            ("dispute", entry.stripe_dispute_id),
        )
        if value
    }
    return {
        "at": entry.created_at,
        "source": "ledger",
        "type": f"ledger.{entry.kind}",
        "actor": "Shopkeeper" if entry.source == "shopkeeper" else "Stripe",
        **amount_fields("amount", entry.amount_minor, entry.currency),
        "currency": entry.currency,
        "details": {"external_id": entry.external_id, "source": entry.source, **stripe_ids},
    }
