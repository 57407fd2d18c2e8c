"""Reads of authorisations about to lapse: the order detail's deadline and warning, the list's
`authorization_expiring` filter and marker, and the count a dashboard shows.

An order's authorisation is open while the order is authorised (not cancelled) and its payment
still waits for capture at Stripe (`requires_capture`); its deadline is counted from
`Payment.authorized_at` (orders.authorisation_rules). Everything is computed at read time from
the partial index `payment_open_authorisation_idx`: no job keeps a flag that could be stale.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Case, DateTimeField, Exists, OuterRef, Q, QuerySet, Subquery, When
from django.utils import timezone

from shopkeeper.orders.authorisation_rules import AuthorisationWindow, expiry_warning
from shopkeeper.orders.models import Order
from shopkeeper.orders.states import OrderStatus
from shopkeeper.payments.models import Payment
from shopkeeper.payments.states import PaymentStatus
from shopkeeper.payments.stripe_statuses import IntentStatus


def window() -> AuthorisationWindow:
    return AuthorisationWindow(
        warn_after=settings.SHOPKEEPER_AUTH_WARN_AFTER,
        expire_after=settings.SHOPKEEPER_AUTH_EXPIRE_AFTER,
    )


def open_authorisations() -> QuerySet[Payment]:
    """Payments whose authorisation is still open, on orders still waiting for it."""
    return Payment.objects.filter(
        intent_status=IntentStatus.REQUIRES_CAPTURE,
        authorized_at__isnull=False,
        order__payment_status=PaymentStatus.AUTHORIZED,
    ).exclude(order__status=OrderStatus.CANCELLED)


def expiring_authorisations(now: datetime | None = None) -> QuerySet[Payment]:
    """Open authorisations past `SHOPKEEPER_AUTH_WARN_AFTER` (expired ones included)."""
    cutoff = window().expiring_before(now or timezone.now())
    return open_authorisations().filter(authorized_at__lte=cutoff)


def count_expiring_authorisations(now: datetime | None = None) -> int:
    """How many orders have an authorisation about to lapse (or past its deadline)."""
    return expiring_authorisations(now).values("order_id").distinct().count()


def filter_expiring(orders: QuerySet[Order], expiring: bool) -> QuerySet[Order]:
    """`?authorization_expiring=true`: the orders with an expiring authorisation (False: the
    others)."""
    has_one = Exists(expiring_authorisations().filter(order_id=OuterRef("pk")))
    if expiring:
        return orders.filter(has_one, payment_status=PaymentStatus.AUTHORIZED)
    return orders.filter(~Q(has_one))


def with_authorised_at(orders: QuerySet[Order]) -> QuerySet[Order]:
    """Each listed order with `open_authorised_at`: its open authorisation's time, or None.
    Only authorised orders look at their payments (one probe of the payment's order index)."""
    oldest = Subquery(
        Payment.objects.filter(
            order_id=OuterRef("pk"),
            intent_status=IntentStatus.REQUIRES_CAPTURE,
            authorized_at__isnull=False,
        )
        .order_by("authorized_at")
        .values("authorized_at")[:1]
    )
    authorised = Q(payment_status=PaymentStatus.AUTHORIZED) & ~Q(status=OrderStatus.CANCELLED)
    return orders.annotate(
        open_authorised_at=Case(When(authorised, then=oldest), output_field=DateTimeField())
    )


def authorisation_fields(
    authorised_at: datetime | None, now: datetime | None = None
) -> dict[str, Any]:
    """`authorization_expires_at`, `authorization_expiring` and the warning staff read, for an
    order whose open authorisation was made at `authorised_at` (None: it has none)."""
    if authorised_at is None:
        return {
            "authorization_expires_at": None,
            "authorization_expiring": False,
            "authorization_warning": None,
        }
    now = now or timezone.now()
    rules = window()
    expires_at = rules.expires_at(authorised_at)
    expiring = rules.is_expiring(authorised_at, now)
    return {
        "authorization_expires_at": expires_at,
        "authorization_expiring": expiring,
        "authorization_warning": expiry_warning(expires_at, now) if expiring else None,
    }


def open_authorised_at(order: Order, payment: Payment | None) -> datetime | None:
    """The detail's case: the order's newest payment, when it holds the open authorisation."""
    if (
        payment is None
        or order.payment_status != PaymentStatus.AUTHORIZED
        or order.status == OrderStatus.CANCELLED
        or payment.intent_status != IntentStatus.REQUIRES_CAPTURE
    ):
        return None
    return payment.authorized_at
