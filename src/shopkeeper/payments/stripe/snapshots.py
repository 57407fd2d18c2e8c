"""Stripe objects, as plain dicts in Stripe's documented shape, into the port's snapshots.

No SDK here: the client hands over `to_dict()` results and webhook payloads. An emulator's
different shapes are made Stripe's by `emulator.EmulatorGateway` before they get here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from shopkeeper.errors import WebhookEventMalformed, WebhookSignatureInvalid
from shopkeeper.payments.event_shape import check_event_shape
from shopkeeper.payments.gateway import (
    ChargeSnapshot,
    DisputeSnapshot,
    GatewayEvent,
    IntentSnapshot,
    RefundSnapshot,
)
from shopkeeper.payments.stripe_statuses import (
    MONEY_HOLDING_INTENT_STATUSES,
    ChargeStatus,
    DisputeStatus,
    IntentStatus,
    StripeRefundStatus,
)

Shape = Mapping[str, Any]
Status = TypeVar("Status", IntentStatus, ChargeStatus, StripeRefundStatus, DisputeStatus)


def status_of(obj: Shape, kind: type[Status], initial: Status) -> Status:
    """The object's status in Stripe's vocabulary; `initial` (where Stripe's objects start) when
    it carries none. A status Stripe's pinned API version does not have raises ValueError."""
    value = get(obj, "status")
    return initial if value in (None, "") else kind(value)


def plain(obj: Any) -> Any:
    """SDK objects as plain dicts, so snapshots read one shape."""
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else obj


def get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    try:
        value = obj[key]
    except (KeyError, TypeError, IndexError):
        return default
    return default if value is None else value


def id_of(value: Any) -> str:
    """An expandable field: an id, or the expanded object."""
    return value if isinstance(value, str) else str(get(value, "id", ""))


def latest_charge(intent: Shape) -> Any:
    """`latest_charge`: an id, or the charge when expanded; old API versions list `charges`."""
    charge = get(intent, "latest_charge")
    if charge is None:
        charges = get(get(intent, "charges"), "data", [])
        charge = charges[-1] if charges else None
    return charge


def _charge_id(charge: Any, status: IntentStatus) -> str:
    """The charge holding the money; a failed attempt's charge is no use for refunds."""
    if isinstance(charge, str):
        return charge if status in MONEY_HOLDING_INTENT_STATUSES else ""
    if get(charge, "status") == ChargeStatus.FAILED:
        return ""
    return str(get(charge, "id", ""))


def intent_snapshot(intent: Shape) -> IntentSnapshot:
    status = status_of(intent, IntentStatus, IntentStatus.REQUIRES_PAYMENT_METHOD)
    charge = latest_charge(intent)
    card = get(get(charge, "payment_method_details"), "card")
    error = get(intent, "last_payment_error")
    return IntentSnapshot(
        id=get(intent, "id", ""),
        status=status,
        amount=int(get(intent, "amount", 0)),
        currency=str(get(intent, "currency", "")).upper(),
        capture_method=get(intent, "capture_method", "automatic"),
        client_secret=get(intent, "client_secret", ""),
        amount_received=int(get(intent, "amount_received", 0)),
        amount_capturable=int(get(intent, "amount_capturable", 0)),
        order_number=get(get(intent, "metadata"), "order_number", ""),
        charge_id=_charge_id(charge, status),
        card_brand=get(card, "brand", ""),
        card_last4=get(card, "last4", ""),
        last_error=(get(error, "message", "") if error else "")[:500],
        created=int(get(intent, "created", 0)),
        charge_created=int(get(charge, "created", 0))
        if status in MONEY_HOLDING_INTENT_STATUSES
        else 0,
    )


def refund_snapshot(refund: Shape) -> RefundSnapshot:
    return RefundSnapshot(
        id=get(refund, "id", ""),
        status=status_of(refund, StripeRefundStatus, StripeRefundStatus.PENDING),
        amount=int(get(refund, "amount", 0)),
        currency=str(get(refund, "currency", "")).upper(),
        payment_intent_id=get(refund, "payment_intent", "") or "",
        charge_id=id_of(get(refund, "charge", "")),
        failure_reason=get(refund, "failure_reason", ""),
        metadata=dict(get(refund, "metadata", {}) or {}),
        created=int(get(refund, "created", 0)),
    )


def charge_snapshot(charge: Shape) -> ChargeSnapshot:
    return ChargeSnapshot(
        id=get(charge, "id", ""),
        status=status_of(charge, ChargeStatus, ChargeStatus.PENDING),
        amount=int(get(charge, "amount", 0)),
        currency=str(get(charge, "currency", "")).upper(),
        captured=bool(get(charge, "captured", False)),
        amount_captured=int(get(charge, "amount_captured", 0)),
        amount_refunded=int(get(charge, "amount_refunded", 0)),
        payment_intent_id=id_of(get(charge, "payment_intent", "")),
        created=int(get(charge, "created", 0)),
    )


def dispute_snapshot(dispute: Shape) -> DisputeSnapshot:
    return DisputeSnapshot(
        id=get(dispute, "id", ""),
        status=status_of(dispute, DisputeStatus, DisputeStatus.NEEDS_RESPONSE),
        amount=int(get(dispute, "amount", 0)),
        currency=str(get(dispute, "currency", "")).upper(),
        charge_id=id_of(get(dispute, "charge", "")),
        payment_intent_id=id_of(get(dispute, "payment_intent", "")),
        reason=get(dispute, "reason", ""),
        created=int(get(dispute, "created", 0)),
    )


def _listed_refunds(charge: Shape) -> tuple[RefundSnapshot, ...] | None:
    """A charge's refunds list, when complete: Stripe stopped embedding it in 2022-11-15."""
    refunds = get(charge, "refunds")
    data = get(refunds, "data")
    if not isinstance(data, list) or get(refunds, "has_more", False):
        return None
    return tuple(refund_snapshot(refund) for refund in data)


def gateway_event(payload: Shape, shaped: Any = None) -> GatewayEvent:
    """A verified event's payload as a GatewayEvent; `shaped` makes an emulator's object Stripe's.

    Signed with our secret yet not an event: refused like a forgery, never stored. An event
    whose object's fields are not what Stripe sends (an amount "lots", ...) is malformed.
    """
    data = dict(payload)
    obj = get(get(data, "data"), "object", {})
    if not isinstance(obj, Mapping) or not data.get("id") or not data.get("type"):
        raise WebhookSignatureInvalid("The payload is not a Stripe event")
    check_event_shape(data)
    try:
        return _event(data, obj, shaped(obj) if shaped else obj)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise WebhookEventMalformed(f"The event's object cannot be read: {error}") from error


def _event(data: dict[str, Any], obj: Shape, shape: Shape) -> GatewayEvent:
    kind = obj.get("object")
    return GatewayEvent(
        id=str(data["id"]),
        type=str(data["type"]),
        created=int(data.get("created") or 0),
        object=obj,
        payload=data,
        intent=intent_snapshot(shape) if kind == "payment_intent" else None,
        refund=refund_snapshot(shape) if kind == "refund" else None,
        charge=charge_snapshot(shape) if kind == "charge" else None,
        dispute=dispute_snapshot(shape) if kind == "dispute" else None,
        refunds=_listed_refunds(shape) if kind == "charge" else None,
    )
