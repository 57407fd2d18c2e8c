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
from dataclasses import dataclass
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
from shopkeeper.reconciliation.compare import compare_payment, proven_intent
from shopkeeper.reconciliation.facts import Difference, Fix, LedgerFacts, StripeFacts
from shopkeeper.reconciliation.listing import (
    AccountListing,
    Listed,
    Pacer,
    read_account,
    stripe_facts,
)
from shopkeeper.reconciliation.report import Report
from shopkeeper.reconciliation.selectors import Books, books, intents_here, ledger_facts
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
    listed: Listed | None = None,
    in_flight: timedelta | None = None,
    requests_per_second: float | None = None,
) -> Report:
    """Compare our books with Stripe's and, with `fix`, record what Stripe proves.

    Scope: the PaymentIntents of `order_number`, or those created since `since` (plus any with
    Stripe news since then, or with a refund still pending), or all. Stripe's side is read from
    the account's lists and ours in chunks; a PaymentIntent where they differ (or that the
    lists cannot cover) is read again on its own, ours first, and only that fresh comparison
    is reported and fixed. `listed(count)` is told how many objects Stripe's lists brought so
    far, `progress(done, total)` how many PaymentIntents were compared. Requests to Stripe are
    paced at `requests_per_second` (default SHOPKEEPER_RECONCILE_REQUESTS_PER_SECOND). A
    pending refund Stripe never received is sent again (same idempotency key) only once it has
    been left alone for `in_flight` (default SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS).
    Raises OrderNotFound for an unknown order number.
    """
    gateway = gateway or get_gateway()
    start = start_of(since)
    report = Report(fix=fix, since=_label(since), order_number=order_number or "")
    pacer = Pacer(
        settings.SHOPKEEPER_RECONCILE_REQUESTS_PER_SECOND
        if requests_per_second is None
        else requests_per_second
    )
    here = intents_here(since=start, order_number=order_number)
    try:
        listing = None if order_number is not None else _listing(gateway, start, pacer, listed)
    except (PaymentProviderUnavailable, PaymentRequestInvalid) as error:
        report.unreachable.append(f"listing PaymentIntents and their news: {error.detail}")
        report.stripe_requests = pacer.requests
        return report
    targets = _targets(listing, here)
    checks = _ours(targets)
    report.skipped = len(targets) - len(checks)
    run = _Run(gateway, pacer, report, fix=fix, in_flight_after=_in_flight_after(in_flight))
    done = 0
    for start_at in range(0, len(checks), CHUNK):
        chunk = checks[start_at : start_at + CHUNK]
        listed_here = [intent_id for intent_id, snapshot in chunk if snapshot is not None]
        ours = books(listed_here, in_flight_after=run.in_flight_after)
        for intent_id, snapshot in chunk:
            if not (listing and snapshot and run.agrees(ours, listing.facts(snapshot))):
                run.reconcile_intent(intent_id)
            done += 1
            if progress is not None:
                progress(done, len(checks))
    report.stripe_requests = pacer.requests
    return report


CHUNK = 500  # PaymentIntents whose books are read together


def _listing(
    gateway: PaymentGateway, start: datetime | None, pacer: Pacer, listed: Listed | None
) -> AccountListing:
    created_gte = int(start.timestamp()) if start is not None else None
    return read_account(gateway, created_gte=created_gte, pacer=pacer, listed=listed)


def _in_flight_after(in_flight: timedelta | None) -> datetime:
    return timezone.now() - (in_flight if in_flight is not None else _in_flight())


def start_of(since: date | datetime | None) -> datetime | None:
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


def _targets(listing: AccountListing | None, here: list[str]) -> dict[str, IntentSnapshot | None]:
    """Every PaymentIntent to compare: those Stripe listed (with their facts), then those
    with news in the window but created before it, then ours the listing did not bring (each
    of these read on its own)."""
    targets: dict[str, IntentSnapshot | None] = dict(listing.intents) if listing else {}
    touched = _existing(Payment.objects.all(), "intent_id", listing.touched) if listing else {}
    for intent_id in sorted(touched):  # (another shop's on the same account: not ours to ask)
        targets.setdefault(intent_id, None)
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


@dataclass
class _Run:
    gateway: PaymentGateway
    pacer: Pacer
    report: Report
    fix: bool
    in_flight_after: datetime

    def agrees(self, ours: Books, stripe: StripeFacts) -> bool:
        """Do our books, as read in bulk, agree with Stripe's lists for this PaymentIntent,
        with nothing to do for it? (Then it is checked; otherwise it is read again alone.)"""
        facts = ours.facts.get(stripe.intent.id)
        if compare_payment(facts, stripe) or (self.fix and stripe.intent.id in ours.claimed):
            return False
        self.report.checked += 1
        rows = facts.refund_rows if facts else ()
        self.report.in_flight += sum(1 for row in rows if row.in_flight)
        return True

    def reconcile_intent(self, intent_id: str) -> None:
        """Compare one PaymentIntent, read now, and with `fix`, fix it and compare again.

        Our side is read before Stripe's: news landing in between then shows as something
        Stripe has and we lack (settled idempotently by a fix), never as money we hold that
        Stripe lacks.
        """
        report, gateway, in_flight_after = self.report, self.gateway, self.in_flight_after
        report.checked += 1
        ours = ledger_facts(intent_id, in_flight_after=in_flight_after)
        try:
            stripe = stripe_facts(gateway, intent_id, self.pacer)
            found = compare_payment(ours, stripe)
            rows = ours.refund_rows if ours else ()
            report.in_flight += sum(1 for row in rows if row.in_flight)
            if not self.fix or not any(difference.fix != Fix.NONE for difference in found):
                if self.fix and ours is not None:  # nothing to record: a stale claim can go
                    recover_expired_claim(ours.order_number, None)
                report.found(found)
                return
            unsent = _apply_fixes(found, ours, stripe, gateway, in_flight_after)
            if ours is not None:  # Stripe's view is recorded: a claim past its lease can go
                recover_expired_claim(ours.order_number, None)
            if any(d.fix == Fix.RESEND_REFUND for d in found):  # Stripe has changed: ask again
                stripe = stripe_facts(gateway, intent_id, self.pacer)
            after = ledger_facts(intent_id, in_flight_after=in_flight_after)
            report.found(found, [*compare_payment(after, stripe), *unsent])
        except (PaymentProviderUnavailable, PaymentRequestInvalid) as error:
            logger.warning("Reconciling %s: Stripe did not answer (%s)", intent_id, error.detail)
            report.unreachable.append(f"{intent_id}: {error.detail}")


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
