"""Reconciliation: page through Stripe and our ledger, report every difference, fix what Stripe
proves.

Stripe is read outside any transaction; every fix goes through the service that would have
recorded the same news from a webhook (`apply_intent`, `settle_refund`, `execute_refund`), each
in its own transaction with its audit row, and each idempotent: a second run finds nothing to
do. Nothing is written without `fix`. Money is never invented: a ledger row is only ever added
for what a Stripe object shows, and differences no Stripe object settles are left to a person.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from shopkeeper.disputes.services import record_dispute
from shopkeeper.errors import PaymentProviderUnavailable, PaymentRequestInvalid
from shopkeeper.orders.claims import recover_expired_claim
from shopkeeper.orders.models import Order
from shopkeeper.payments.gateway import IntentSnapshot, PaymentGateway
from shopkeeper.payments.models import Payment
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.services import apply_intent
from shopkeeper.payments.stripe_statuses import IntentStatus
from shopkeeper.reconciliation.compare import compare_payment, proven_intent
from shopkeeper.reconciliation.facts import Difference, Fix, LedgerFacts, StripeFacts
from shopkeeper.reconciliation.report import Report
from shopkeeper.reconciliation.selectors import intents_here, ledger_facts
from shopkeeper.refunds.rules import RefundStatus
from shopkeeper.refunds.services import execute_refund
from shopkeeper.refunds.settlement import settle_refund

logger = logging.getLogger(__name__)

SOURCE = "reconciliation"
Progress = Callable[[int, int], None]


def reconcile(
    *,
    since: date | datetime | None = None,
    order_number: str | None = None,
    fix: bool = False,
    gateway: PaymentGateway | None = None,
    progress: Progress | None = None,
    in_flight: timedelta | None = None,
) -> Report:
    """Compare our books with Stripe's and, with `fix`, record what Stripe proves.

    Scope: the PaymentIntents of `order_number`, or those created since `since` (plus any with
    a refund still pending), or all. `progress(done, total)` is called after each one. A
    pending refund Stripe never received is sent again (same idempotency key) only once it has
    been left alone for `in_flight` (default SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS).
    Raises OrderNotFound for an unknown order number.
    """
    gateway = gateway or get_gateway()
    start = _start_of(since)
    report = Report(fix=fix, since=_label(since), order_number=order_number or "")
    here = intents_here(since=start, order_number=order_number)
    try:
        targets = _targets(gateway, here, since=start, whole_account=order_number is None)
    except (PaymentProviderUnavailable, PaymentRequestInvalid) as error:
        report.unreachable.append(f"listing PaymentIntents: {error.detail}")
        return report
    checks = _ours(targets)
    report.skipped = len(targets) - len(checks)
    in_flight_after = timezone.now() - (in_flight if in_flight is not None else _in_flight())
    for done, (intent_id, listed) in enumerate(checks, start=1):
        _reconcile_intent(
            intent_id, listed, gateway, report, fix=fix, in_flight_after=in_flight_after
        )
        if progress is not None:
            progress(done, len(checks))
    return report


def _start_of(since: date | datetime | None) -> datetime | None:
    """A date means from its first moment, in the shop's time zone."""
    if since is None or isinstance(since, datetime):
        return since
    return timezone.make_aware(datetime.combine(since, time.min))


def _label(since: date | datetime | None) -> str:
    if isinstance(since, datetime):
        return timezone.localtime(since).isoformat(sep=" ", timespec="seconds")
    return since.isoformat() if since is not None else ""


def _in_flight() -> timedelta:
    return timedelta(seconds=settings.SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS)


def _targets(
    gateway: PaymentGateway, here: list[str], *, since: datetime | None, whole_account: bool
) -> dict[str, IntentSnapshot | None]:
    """Every PaymentIntent to compare: Stripe's (listed, for the whole account or since a
    moment) and ours (looked up one by one when the listing did not bring them)."""
    targets: dict[str, IntentSnapshot | None] = {}
    if whole_account:
        created_gte = int(since.timestamp()) if since is not None else None
        for intent in gateway.list_payment_intents(created_gte=created_gte):
            targets[intent.id] = intent
    for intent_id in here:
        targets.setdefault(intent_id, None)
    return targets


def _ours(targets: dict[str, IntentSnapshot | None]) -> list[tuple[str, IntentSnapshot | None]]:
    """Leave out what Stripe lists for others on the same account: PaymentIntents with no
    payment here that name no order of ours, or that were created before the order they name
    (another database on the same test-mode account, reset since, reused the number)."""
    known = _existing(Payment.objects.all(), "intent_id", targets)
    named = {i.order_number for i in targets.values() if i is not None and i.id not in known}
    placed = _existing(Order.objects.all(), "number", named)
    return [
        (intent_id, listed)
        for intent_id, listed in targets.items()
        if listed is None
        or intent_id in known
        or (listed.order_number in placed and listed.created >= placed[listed.order_number])
    ]


def _existing(rows: QuerySet[Any], field: str, wanted: Iterable[str]) -> dict[str, int]:
    """Which of `wanted` exist, with when each was created (Unix time, a second of clock skew
    allowed), asked in chunks: databases cap a query's parameters."""
    ordered, found = list(wanted), dict[str, int]()
    for start in range(0, len(ordered), 500):
        chunk = rows.filter(**{f"{field}__in": ordered[start : start + 500]})
        for value, created in chunk.values_list(field, "created_at"):
            found[value] = int(created.timestamp()) - 1
    return found


def _reconcile_intent(
    intent_id: str,
    listed: IntentSnapshot | None,
    gateway: PaymentGateway,
    report: Report,
    *,
    fix: bool,
    in_flight_after: datetime,
) -> None:
    """Compare one PaymentIntent and, with `fix`, fix it and compare again.

    Our side is read before Stripe's: news landing in between then shows as something Stripe
    has and we lack (settled idempotently by a fix), never as money we hold that Stripe lacks.
    """
    report.checked += 1
    ours = ledger_facts(intent_id, in_flight_after=in_flight_after)
    try:
        stripe = stripe_facts(gateway, intent_id, listed)
        found = compare_payment(ours, stripe)
        report.in_flight += sum(1 for row in (ours.refund_rows if ours else ()) if row.in_flight)
        if not fix or not any(difference.fix != Fix.NONE for difference in found):
            if fix and ours is not None:  # nothing to record: a claim past its lease can go
                recover_expired_claim(ours.order_number, None)
            report.found(found)
            return
        unsent = _apply_fixes(found, ours, stripe, gateway, in_flight_after)
        if ours is not None:  # Stripe's view is recorded: a claim past its lease can go
            recover_expired_claim(ours.order_number, None)
        if any(d.fix == Fix.RESEND_REFUND for d in found):  # Stripe has changed: ask again
            stripe = stripe_facts(gateway, intent_id, None)
        after = ledger_facts(intent_id, in_flight_after=in_flight_after)
        report.found(found, [*compare_payment(after, stripe), *unsent])
    except (PaymentProviderUnavailable, PaymentRequestInvalid) as error:
        logger.warning("Reconciling %s: Stripe did not answer (%s)", intent_id, error.detail)
        report.unreachable.append(f"{intent_id}: {error.detail}")


def stripe_facts(
    gateway: PaymentGateway, intent_id: str, listed: IntentSnapshot | None = None
) -> StripeFacts | None:
    """Stripe's side of one PaymentIntent; None when Stripe does not know it.

    Only a PaymentIntent that took money can have refunds and disputes, and only one that
    held money and was canceled has a charge to prove it; others cost one call at most.
    """
    try:
        intent = listed or gateway.retrieve_payment_intent(intent_id)
    except PaymentRequestInvalid as error:
        if (
            error.extra.get("stripe_code") == "resource_missing"
            or error.extra.get("http_status") == 404
        ):
            return None
        raise
    if intent.status == IntentStatus.SUCCEEDED:
        return StripeFacts(
            intent=intent,
            charges=tuple(gateway.list_charges(intent_id)),
            refunds=tuple(gateway.list_refunds(intent_id)),
            disputes=tuple(gateway.list_disputes(intent_id)),
        )
    if intent.status == IntentStatus.CANCELED:
        return StripeFacts(intent=intent, charges=tuple(gateway.list_charges(intent_id)))
    return StripeFacts(intent=intent)


def _apply_fixes(
    found: list[Difference],
    ours: LedgerFacts | None,
    stripe: StripeFacts | None,
    gateway: PaymentGateway,
    in_flight_after: datetime,
) -> list[Difference]:
    """Record what Stripe proves, the PaymentIntent first (refunds and disputes need its
    capture), then send refunds Stripe never received. Returns the resends still without
    Stripe's answer."""
    if ours is None or stripe is None:
        return []
    if any(difference.fix == Fix.APPLY_INTENT for difference in found):
        apply_intent(proven_intent(ours, stripe), source=SOURCE)
    refunds = {refund.id: refund for refund in stripe.refunds}
    disputes = {dispute.id: dispute for dispute in stripe.disputes}
    for difference in found:
        if difference.fix == Fix.SETTLE_REFUND and difference.stripe_id in refunds:
            settle_refund(refunds[difference.stripe_id], source=SOURCE)
        elif difference.fix == Fix.APPLY_DISPUTE and difference.stripe_id in disputes:
            record_dispute(disputes[difference.stripe_id], source=SOURCE)
    unsent = []
    for difference in found:
        if difference.fix == Fix.RESEND_REFUND and difference.refund_id is not None:
            logger.warning("Refund %s never reached Stripe: sending it again", difference.refund_id)
            refund = execute_refund(
                refund_id=difference.refund_id, gateway=gateway, in_flight_after=in_flight_after
            )
            if refund.status == RefundStatus.PENDING and not refund.stripe_refund_id:
                unsent.append(difference)
    return unsent
