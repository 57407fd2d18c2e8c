"""Stripe's side of reconciliation: the account's lists, read a page at a time, and paced.

A run over the account (or over what was created since a moment) reads Stripe's four lists,
PaymentIntents, charges, refunds and disputes, 100 objects a request, instead of asking about
each PaymentIntent: 1,000 PaymentIntents cost some 30 requests instead of some 3,000. Requests
are paced (`Pacer`) so that a whole-account run stays under Stripe's rate limit.

One PaymentIntent is still read on its own (`stripe_facts`) where the lists cannot be complete
for it: it was created before the window, or after the listing, or a difference must be
confirmed with a fresh read before anything is reported or fixed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from shopkeeper.errors import PaymentRequestInvalid
from shopkeeper.payments.gateway import (
    ChargeSnapshot,
    DisputeSnapshot,
    IntentSnapshot,
    PaymentGateway,
    RefundSnapshot,
)
from shopkeeper.payments.stripe_statuses import IntentStatus
from shopkeeper.reconciliation.facts import StripeFacts

T = TypeVar("T")
Listed = Callable[[int], None]  # told the number of objects listed so far


class Pacer:
    """At most `per_second` requests a second (0 or less: as fast as Stripe answers), and
    the number of requests made."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1 / per_second if per_second > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._last: float | None = None
        self.requests = 0

    def wait(self) -> None:
        """Before a request: sleep until it may start (an interval after the one before)."""
        if self._last is not None and self._interval:
            pause = self._last + self._interval - self._clock()
            if pause > 0:
                self._sleep(pause)
        self._last = self._clock()

    def sent(self) -> None:
        """After a request."""
        self.requests += 1

    def call(self, read: Callable[..., T], *args: object) -> T:
        """One paced request."""
        self.wait()
        try:
            return read(*args)
        finally:
            self.sent()


def paced(pages: Iterator[Sequence[T]], pacer: Pacer) -> Iterator[Sequence[T]]:
    """The pages of a list, each request paced and counted."""
    while True:
        pacer.wait()
        try:
            page = next(pages)
        except StopIteration:
            return
        pacer.sent()
        yield page


@dataclass
class AccountListing:
    """What Stripe lists for the account, grouped by PaymentIntent."""

    intents: dict[str, IntentSnapshot] = field(default_factory=dict)
    charges: dict[str, list[ChargeSnapshot]] = field(default_factory=lambda: defaultdict(list))
    refunds: dict[str, list[RefundSnapshot]] = field(default_factory=lambda: defaultdict(list))
    disputes: dict[str, list[DisputeSnapshot]] = field(default_factory=lambda: defaultdict(list))

    def facts(self, intent: IntentSnapshot) -> StripeFacts:
        """Stripe's side of a listed PaymentIntent, complete when its charges, refunds and
        disputes were listed from the same moment on (they are all created after it)."""
        return facts_of(
            intent,
            charges=self.charges.get(intent.id, ()),
            refunds=self.refunds.get(intent.id, ()),
            disputes=self.disputes.get(intent.id, ()),
        )

    @property
    def touched(self) -> set[str]:
        """PaymentIntents not listed that have a charge, refund or dispute listed: created
        before the window, with news inside it."""
        named = {*self.charges, *self.refunds, *self.disputes}
        return named - set(self.intents)


def read_account(
    gateway: PaymentGateway,
    *,
    created_gte: int | None,
    pacer: Pacer,
    listed: Listed | None = None,
) -> AccountListing:
    """Stripe's four lists for the account (created at or after `created_gte`), all pages.

    PaymentIntents first: anything Stripe makes for one while the lists are read is then
    either listed with it or seen as news of a PaymentIntent not listed (read on its own).
    """
    listing = AccountListing()
    count = 0

    def each(pages: Iterator[Sequence[T]]) -> Iterator[T]:
        nonlocal count
        for page in paced(pages, pacer):
            count += len(page)
            if listed is not None:
                listed(count)
            yield from page

    for intent in each(gateway.list_payment_intents(created_gte=created_gte)):
        listing.intents[intent.id] = intent
    charge_intents: dict[str, str] = {}
    for charge in each(gateway.list_account_charges(created_gte=created_gte)):
        if charge.payment_intent_id:
            listing.charges[charge.payment_intent_id].append(charge)
            charge_intents[charge.id] = charge.payment_intent_id
    for refund in each(gateway.list_account_refunds(created_gte=created_gte)):
        # localstripe's release of a partial capture names only the charge (compare.py).
        intent_id = refund.payment_intent_id or charge_intents.get(refund.charge_id, "")
        if intent_id:
            listing.refunds[intent_id].append(refund)
    for dispute in each(gateway.list_account_disputes(created_gte=created_gte)):
        intent_id = dispute.payment_intent_id or charge_intents.get(dispute.charge_id, "")
        if intent_id:
            listing.disputes[intent_id].append(dispute)
    return listing


def facts_of(
    intent: IntentSnapshot,
    *,
    charges: Sequence[ChargeSnapshot],
    refunds: Sequence[RefundSnapshot],
    disputes: Sequence[DisputeSnapshot],
) -> StripeFacts:
    """Only a PaymentIntent that took money can have refunds and disputes, and only one that
    held money and was canceled has a charge to prove it."""
    if intent.status == IntentStatus.SUCCEEDED:
        return StripeFacts(intent, tuple(charges), tuple(refunds), tuple(disputes))
    if intent.status == IntentStatus.CANCELED:
        return StripeFacts(intent, charges=tuple(charges))
    return StripeFacts(intent)


def stripe_facts(gateway: PaymentGateway, intent_id: str, pacer: Pacer) -> StripeFacts | None:
    """Stripe's side of one PaymentIntent, read now on its own; None when Stripe does not
    know it. One that took money costs four reads, one canceled two, any other one."""
    try:
        intent = pacer.call(gateway.retrieve_payment_intent, intent_id)
    except PaymentRequestInvalid as error:
        if (
            error.extra.get("stripe_code") == "resource_missing"
            or error.extra.get("http_status") == 404
        ):
            return None
        raise
    took_money = intent.status == IntentStatus.SUCCEEDED
    charged = took_money or intent.status == IntentStatus.CANCELED
    return facts_of(
        intent,
        charges=pacer.call(gateway.list_charges, intent_id) if charged else (),
        refunds=pacer.call(gateway.list_refunds, intent_id) if took_money else (),
        disputes=pacer.call(gateway.list_disputes, intent_id) if took_money else (),
    )
