"""`shopkeeper seed --orders N`: many orders, fast, for measuring the shop at scale.

The rows are what the real use cases would have written for each order's story (placed, paid,
authorised, declined, left unpaid, cancelled, refunded in part or in full, a refund waiting for
approval, an order flagged for a person): the order and its lines, the PaymentIntent, the ledger
movements under the external ids `payments.services` uses, refunds and their lines, open flags,
and each order's audit chain sealed with `SHOPKEEPER_AUDIT_KEY` (hashes computed here, in bulk,
by the same functions as `audit.services`), so `audit verify` accepts the result.

Rows go in with PostgreSQL's COPY, a batch per transaction. Each batch takes EXCLUSIVE locks on
the tables it fills (readers go on; the shop's own writers wait for the batch) and reserves its
ids from the tables' sequences, so seeding next to a running shop never collides with it. Stripe
is not called: the PaymentIntents, charges and refunds named here exist only in these rows.
"""

from __future__ import annotations

import bisect
import collections
import functools
import itertools
import json
import multiprocessing
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from shopkeeper.accounts.models import User
from shopkeeper.audit.chain import GENESIS_HASH, chain_name, entry_hash, head_mac
from shopkeeper.audit.models import AuditChainHead, AuditEntry
from shopkeeper.audit.services import SEQ_SEQUENCE, audit_key
from shopkeeper.catalog.models import Product
from shopkeeper.money import Money
from shopkeeper.orders.models import Attention, Order, OrderLine
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.payments.stripe_statuses import IntentStatus
from shopkeeper.refunds.models import Refund, RefundLine
from shopkeeper.shipping import shipping_fee

Progress = Callable[[int, int], None]

BATCH = 5_000
WORKERS = 2
SPAN = timedelta(days=730)
NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # as checkout's order numbers
_NUMBER_SPACE = 32**8
# Order ids map one to one onto numbers (an odd multiplier is invertible modulo 2**40), so
# numbers never collide and do not reveal the order of the rows.
_NUMBER_MULTIPLIER = 0x9E3779B97F
_NUMBER_OFFSET = 0x5DEECE66D

# (story, weight): what happened to the order. Shares close to a shop's: most paid, some unpaid.
STORIES: tuple[tuple[str, float], ...] = (
    ("paid", 0.700),
    ("partially_refunded", 0.050),
    ("refunded", 0.030),
    ("authorized", 0.040),
    ("pending", 0.060),
    ("failed", 0.040),
    ("abandoned", 0.050),
    ("voided", 0.025),
    ("awaiting_approval", 0.002),
    ("flagged", 0.003),
)
CURRENCIES = (("USD", 0.92), ("JPY", 0.05), ("KWD", 0.03))
# Ordered by how often people carry them.
CARD_BRANDS = (("visa", 0.55), ("mastercard", 0.3), ("amex", 0.1), ("discover", 0.05))
DECLINES = (
    "Your card was declined.",
    "Your card has insufficient funds.",
    "Your card's security code is incorrect.",
    "Your card has expired.",
)
REFUND_REASONS = ("requested_by_customer", "damaged", "wrong_item", "not_received", "duplicate")

FIRST_NAMES = (
    "Ada", "Grace", "Linus", "Margaret", "Yukihiro", "Fatima", "Alan", "Barbara", "Claude",
    "Dennis", "Edsger", "Frances", "Guido", "Hedy", "Ivan", "Joan", "Ken", "Lynn", "Mary",
    "Niklaus", "Olga", "Peter", "Radia", "Sophie", "Tim", "Ursula", "Vint", "Wendy", "Xavier",
    "Yvonne", "Zoe", "Amara", "Bjorn", "Chen", "Dara", "Elif", "Farid", "Giulia", "Hana",
    "Ines", "Jonas", "Kemal", "Leila", "Mateo", "Nadia", "Omar", "Priya", "Quentin", "Rosa",
    "Sven", "Tomas", "Aiko", "Bruno", "Carmen", "Diego", "Emma", "Felix", "Greta", "Hugo",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "Hopper", "Torvalds", "Hamilton", "Matsumoto", "Khan", "Turing", "Liskov",
    "Shannon", "Ritchie", "Dijkstra", "Allen", "Rossum", "Lamarr", "Sutherland", "Clarke",
    "Thompson", "Conway", "Jackson", "Wirth", "Petrova", "Naur", "Perlman", "Wilson",
    "Berners-Lee", "Franklin", "Cerf", "Hall", "Leroy", "Okafor", "Nakamura", "Garcia",
    "Muller", "Rossi", "Silva", "Novak", "Kowalski", "Jensen", "Dubois", "Haddad", "Yilmaz",
    "Fischer", "Moreau", "Santos", "Ivanova", "Larsen", "Costa", "Weber", "Bianchi", "Kim",
    "Nguyen", "Patel", "Sato", "Ortiz", "Meyer", "Andersen", "Lindqvist", "Kaur", "Mendes",
)  # fmt: skip
DOMAINS = (
    ("gmail.com", 0.34), ("yahoo.com", 0.09), ("outlook.com", 0.1), ("hotmail.com", 0.07),
    ("icloud.com", 0.08), ("proton.me", 0.04), ("gmx.de", 0.03), ("example.org", 0.05),
    ("fastmail.com", 0.02), ("web.de", 0.02), ("orange.fr", 0.03), ("live.com", 0.03),
    ("company.example", 0.1),
)  # fmt: skip
CITIES = (
    ("Springfield", "US"), ("Portland", "US"), ("Austin", "US"), ("Denver", "US"),
    ("Boston", "US"), ("Chicago", "US"), ("Seattle", "US"), ("Toronto", "CA"),
    ("London", "GB"), ("Berlin", "DE"), ("Lyon", "FR"), ("Osaka", "JP"), ("Kuwait City", "KW"),
)  # fmt: skip
STREETS = ("Main Street", "Oak Avenue", "Park Road", "Station Road", "Elm Street", "High Street")


def order_number(order_id: int) -> str:
    """The order's number, one to one with its id: `SK-` and 8 Crockford base-32 digits."""
    value = (order_id * _NUMBER_MULTIPLIER + _NUMBER_OFFSET) % _NUMBER_SPACE
    digits = []
    for _ in range(8):
        value, digit = divmod(value, 32)
        digits.append(NUMBER_ALPHABET[digit])
    return "SK-" + "".join(reversed(digits))


@dataclass(frozen=True, slots=True)
class Customer:
    name: str
    email: str


@functools.lru_cache(maxsize=500_000)
def customer(index: int) -> Customer:
    """Customer `index` of the shop: the same index always gives the same person."""
    pick = random.Random(index)
    first, last = pick.choice(FIRST_NAMES), pick.choice(LAST_NAMES)
    domain = _DOMAIN(pick)
    local = pick.choice(
        (
            f"{first}.{last}",
            f"{first}{last}{index % 1000}",
            f"{first[0]}.{last}",
            f"{first}_{index}",
            f"{last}.{first}{index % 100}",
        )
    )
    return Customer(f"{first} {last}", f"{local.lower().replace('-', '')}@{domain}")


@dataclass(slots=True)
class Counts:
    orders: int = 0
    lines: int = 0
    payments: int = 0
    ledger: int = 0
    refunds: int = 0
    attention: int = 0
    audit: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True, slots=True)
class _Actor:
    pk: int
    email: str


@dataclass(frozen=True, slots=True)
class _Product:
    pk: int
    sku: str
    name: str
    price_minor: int


@dataclass(frozen=True, slots=True)
class _Staff:
    refunders: tuple[_Actor, ...]
    approvers: tuple[_Actor, ...]


@dataclass(slots=True)
class _Rows:
    """One batch's rows, table by table, in COPY column order."""

    orders: list[tuple[Any, ...]] = field(default_factory=list)
    lines: list[tuple[Any, ...]] = field(default_factory=list)
    payments: list[tuple[Any, ...]] = field(default_factory=list)
    ledger: list[tuple[Any, ...]] = field(default_factory=list)
    refunds: list[tuple[Any, ...]] = field(default_factory=list)
    refund_lines: list[tuple[Any, ...]] = field(default_factory=list)
    attention: list[tuple[Any, ...]] = field(default_factory=list)
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    heads: list[tuple[Any, ...]] = field(default_factory=list)


class _Ids:
    """Ids reserved for one batch: handed out in order, never beyond what was reserved."""

    def __init__(self, first: int, count: int) -> None:
        self._next, self._end = first, first + count

    def take(self) -> int:
        if self._next >= self._end:
            raise RuntimeError("more rows than ids reserved for the batch")
        self._next += 1
        return self._next - 1


# Columns written, by model field name (the table's column names come from the models).
ORDER_FIELDS = (
    "id", "number", "email", "status", "payment_status", "currency", "subtotal_minor",
    "shipping_minor", "grand_total_minor", "shipping_address", "cancel_reason", "cancelled_at",
    "operation", "operation_key", "operation_started_at", "created_at", "updated_at",
    "needs_attention",
)  # fmt: skip
LINE_FIELDS = (
    "id", "order", "product", "sku", "name", "unit_price_minor", "quantity", "line_total_minor",
    "restocked_quantity",
)  # fmt: skip
PAYMENT_FIELDS = (
    "id", "order", "intent_id", "client_secret", "capture_method", "amount_minor", "currency",
    "intent_status", "charge_id", "card_brand", "card_last4", "last_error", "flagged",
    "flag_reason", "created_at", "updated_at",
)  # fmt: skip
LEDGER_FIELDS = (
    "id", "order", "payment", "kind", "amount_minor", "currency", "external_id",
    "stripe_payment_intent_id", "stripe_charge_id", "stripe_refund_id", "stripe_dispute_id",
    "source", "created_at",
)  # fmt: skip
REFUND_FIELDS = (
    "id", "key", "order", "payment", "status", "amount_minor", "currency", "reason", "note",
    "include_shipping", "source", "requested_by", "decided_by", "decided_at", "decision_note",
    "stripe_refund_id", "failure_message", "attempts", "last_sent_at", "created_at",
    "updated_at", "settled_at",
)  # fmt: skip
REFUND_LINE_FIELDS = ("id", "refund", "order_line", "quantity", "restock", "amount_minor")
ATTENTION_FIELDS = (
    "id", "order", "code", "subject", "detail", "created_at", "resolved_at", "resolved_by",
    "resolution",
)  # fmt: skip
AUDIT_FIELDS = (
    "seq", "chain", "chain_seq", "created_at", "actor_id", "actor_email", "action",
    "target_type", "target_id", "target_label", "before", "after", "details", "ip",
    "user_agent", "request_id", "prev_hash", "hash",
)  # fmt: skip
HEAD_FIELDS = ("chain", "chain_seq", "hash", "mac")


class _Weighted:
    """Draws names in proportion to their weights (random.choices, without its set-up cost)."""

    def __init__(self, table: Sequence[tuple[Any, float]]) -> None:
        self._names = [name for name, _ in table]
        self._cumulative = list(itertools.accumulate(weight for _, weight in table))

    def __call__(self, pick: random.Random) -> Any:
        at = pick.random() * self._cumulative[-1]
        return self._names[min(bisect.bisect(self._cumulative, at), len(self._names) - 1)]


_STORY = _Weighted(STORIES)
_BRAND = _Weighted(CARD_BRANDS)
_DOMAIN = _Weighted(DOMAINS)
_LINE_COUNT = _Weighted(((1, 0.45), (2, 0.3), (3, 0.17), (4, 0.08)))


def _iso(moment: datetime) -> str:
    return moment.isoformat()


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _json(value: Any) -> str | None:
    return None if value is None else _ENCODE(value)


def _stripe_id(prefix: str, pick: random.Random) -> str:
    return f"{prefix}_{pick.getrandbits(120):030x}"


class _Chain:
    """One order's audit chain, sealed entry by entry as `audit.services.record` does."""

    def __init__(self, builder: _Batch, number: str) -> None:
        self._builder = builder
        self._name = chain_name("order", number)
        self._number = number
        self._seq = 0
        self._hash = GENESIS_HASH

    def add(
        self,
        at: datetime,
        action: str,
        *,
        actor: _Actor | None = None,
        actor_label: str = "",
        before: Any = None,
        after: Any = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self._seq += 1
        request_id = f"{self._builder.pick.getrandbits(64):016x}" if actor is not None else ""
        content: dict[str, Any] = {
            "chain": self._name,
            "chain_seq": self._seq,
            "seq": self._builder.audit_seq.take(),
            "created_at": _iso(at),
            "actor_id": actor.pk if actor is not None else None,
            "actor_email": actor.email if actor is not None else actor_label,
            "action": action,
            "target_type": "order",
            "target_id": self._number,
            "target_label": self._number,
            "before": before,
            "after": after,
            "details": details or {},
            "ip": "198.51.100.7" if actor is not None else None,
            "user_agent": "Mozilla/5.0 (back office)" if actor is not None else "",
            "request_id": request_id,
        }
        digest = entry_hash(self._builder.key, self._hash, content)
        self._builder.rows.audit.append(
            (
                *(content[name] for name in AUDIT_FIELDS[:10]),
                _json(before),
                _json(after),
                _json(content["details"]),
                content["ip"],
                content["user_agent"],
                request_id,
                self._hash,
                digest,
            )
        )
        self._hash = digest

    def seal(self) -> None:
        mac = head_mac(self._builder.key, self._name, self._seq, self._hash)
        self._builder.rows.heads.append((self._name, self._seq, self._hash, mac))


@dataclass(slots=True)
class _Shape:
    """What an order will need before its rows are built: how many ids of each kind."""

    story: str
    created_at: datetime
    currency: str
    line_count: int

    @property
    def refunded(self) -> bool:
        return self.story in ("partially_refunded", "refunded", "awaiting_approval")

    @property
    def paid(self) -> bool:
        return self.story in ("paid", "partially_refunded", "refunded", "awaiting_approval")

    def ledger_count(self) -> int:
        return LEDGER_ROWS.get(self.story, 0)

    def audit_count(self) -> int:
        return AUDIT_ENTRIES[self.story]


# Rows each story writes: ledger movements (a release of nothing is not written) and audit
# entries (placed, payment started, then what Stripe and the staff did).
LEDGER_ROWS = {
    "paid": 2,
    "partially_refunded": 3,
    "refunded": 3,
    "awaiting_approval": 2,
    "flagged": 2,
    "authorized": 1,
    "voided": 2,
}
AUDIT_ENTRIES = {
    "pending": 2,
    "failed": 3,
    "abandoned": 3,
    "paid": 3,
    "authorized": 3,
    "voided": 4,
    "flagged": 4,
    "awaiting_approval": 4,
    "partially_refunded": 5,
    "refunded": 5,
}


class _Batch:
    """Builds the rows of one batch of orders, with ids reserved for exactly those rows."""

    def __init__(
        self,
        *,
        pick: random.Random,
        key: bytes,
        products: dict[str, list[_Product]],
        staff: _Staff,
        customers: int,
        now: datetime,
    ) -> None:
        self.pick = pick
        self.key = key
        self.products = products
        self.staff = staff
        self.customers = customers
        self.now = now
        self.rows = _Rows()
        self.audit_seq = _Ids(0, 0)
        self._fees = {code: shipping_fee(code).minor for code in products}

    def build(self, shapes: list[_Shape], ids: dict[str, _Ids]) -> None:
        self.audit_seq = ids["audit"]
        for shape in shapes:
            self._order(shape, ids)

    def _order(self, shape: _Shape, ids: dict[str, _Ids]) -> None:
        pick, story, placed = self.pick, shape.story, shape.created_at
        order_id = ids["orders"].take()
        number = order_number(order_id)
        # A few customers order often, most once or twice.
        person = customer(int(self.customers * pick.random() ** 1.6))
        lines, subtotal = self._lines(shape, order_id, ids)
        fee = self._fees[shape.currency]
        total = subtotal + fee
        status, payment_status = "pending", "pending"
        cancelled_at: datetime | None = None
        cancel_reason = ""
        paid_at = placed + timedelta(seconds=pick.uniform(20, 600))
        chain = _Chain(self, number)
        quantities = {sku: qty for sku, qty, *_ in lines}
        chain.add(
            placed,
            "order.placed",
            actor_label="Customer",
            after={"total": str(Money(total, shape.currency)), "lines": quantities},
            details={"email": person.email},
        )
        payment_id = ids["payments"].take()
        pi = _stripe_id("pi", pick)
        charge = _stripe_id("ch", pick) if shape.paid or story == "flagged" else ""
        manual = story in ("authorized", "voided")
        chain.add(
            placed + timedelta(milliseconds=40),
            "payment.started",
            actor_label="Shopkeeper",
            details={"payment_intent": pi, "capture_method": "manual" if manual else "automatic"},
        )
        intent_status, last_error = str(IntentStatus.REQUIRES_PAYMENT_METHOD), ""
        ledger: list[tuple[str, int, str, datetime]] = []
        if shape.paid or story == "flagged":
            intent_status = str(IntentStatus.SUCCEEDED)
            ledger += [
                ("authorization", total, f"{pi}:authorization", paid_at),
                ("capture", total, f"{pi}:capture", paid_at),
            ]
            status, payment_status = "processing", "paid"
            self._moved(chain, paid_at, pi, "paid", status)
        elif story == "authorized":
            intent_status = str(IntentStatus.REQUIRES_CAPTURE)
            ledger.append(("authorization", total, f"{pi}:authorization", paid_at))
            status, payment_status = "processing", "authorized"
            self._moved(chain, paid_at, pi, "authorized", status)
        elif story == "voided":
            intent_status = str(IntentStatus.CANCELED)
            ledger.append(("authorization", total, f"{pi}:authorization", paid_at))
            self._moved(chain, paid_at, pi, "authorized", "processing")
            cancelled_at = self._past(paid_at + timedelta(hours=pick.uniform(1, 72)))
            ledger.append(("void", total, f"{pi}:void", cancelled_at))
            status, payment_status, cancel_reason = "cancelled", "voided", "customer_request"
            self._cancelled(chain, cancelled_at, "processing", "authorized", cancel_reason)
        elif story == "failed":
            last_error = pick.choice(DECLINES)
            payment_status = "failed"
            chain.add(
                paid_at,
                "payment.failed",
                actor_label="Stripe",
                before={"status": "pending", "payment_status": "pending"},
                after={"status": "pending", "payment_status": "failed"},
                details={"payment_intent": pi, "source": "webhook", "error": last_error},
            )
        elif story == "abandoned":
            intent_status = str(IntentStatus.CANCELED)
            cancelled_at = self._past(placed + timedelta(days=pick.uniform(1, 7)))
            status, payment_status, cancel_reason = "cancelled", "voided", "not_paid"
            self._cancelled(chain, cancelled_at, "pending", "pending", cancel_reason)
        updated_at = placed if story == "pending" else cancelled_at or paid_at
        if story == "flagged":
            self._flag(ids, chain, order_id, pi, paid_at + timedelta(minutes=5))
        if shape.refunded:
            payment_status, updated_at = self._refund(
                shape, ids, chain, order_id, payment_id, pi, charge, total, lines, paid_at, ledger
            )
        brand = _BRAND(pick) if charge or manual else ""
        self.rows.payments.append(
            (
                payment_id, order_id, pi, f"{pi}_secret_{pick.getrandbits(64):016x}",
                "manual" if manual else "automatic", total, shape.currency, intent_status,
                charge, brand, f"{pick.randrange(10000):04d}" if brand else "", last_error,
                False, "", _iso(placed + timedelta(milliseconds=30)), _iso(updated_at),
            )
        )  # fmt: skip
        for kind, amount, external, at in ledger:
            refund_id = external if kind == "refund" else ""
            self.rows.ledger.append(
                (
                    ids["ledger"].take(), order_id, payment_id, kind, amount, shape.currency,
                    external, pi, charge if kind != "void" else "", refund_id, "", "webhook",
                    _iso(at),
                )
            )  # fmt: skip
        city, country = pick.choice(CITIES)
        address = {
            "name": person.name,
            "line1": f"{pick.randrange(1, 400)} {pick.choice(STREETS)}",
            "city": city,
            "postal_code": f"{pick.randrange(10000, 99999)}",
            "country": country,
        }
        self.rows.orders.append(
            (
                order_id, number, person.email, status, payment_status, shape.currency,
                subtotal, fee, total, _json(address), cancel_reason,
                _iso(cancelled_at) if cancelled_at else None, "", "", None, _iso(placed),
                _iso(updated_at), story == "flagged",
            )
        )  # fmt: skip
        chain.seal()

    def _past(self, moment: datetime) -> datetime:
        return min(moment, self.now - timedelta(seconds=self.pick.uniform(1, 60)))

    def _lines(
        self, shape: _Shape, order_id: int, ids: dict[str, _Ids]
    ) -> tuple[list[tuple[str, int, int, int]], int]:
        chosen = self.pick.sample(
            self.products[shape.currency],
            min(shape.line_count, len(self.products[shape.currency])),
        )
        lines, subtotal = [], 0
        for product in chosen:
            qty = 1 if self.pick.random() < 0.7 else self.pick.randint(2, 4)
            line_id = ids["lines"].take()
            total = product.price_minor * qty
            subtotal += total
            self.rows.lines.append(
                (line_id, order_id, product.pk, product.sku, product.name,
                 product.price_minor, qty, total, 0)
            )  # fmt: skip
            lines.append((product.sku, qty, line_id, total))
        # Lines reserved for products the currency lacks are left unused (ids have gaps).
        for _ in range(shape.line_count - len(chosen)):
            ids["lines"].take()
        return lines, subtotal

    def _moved(self, chain: _Chain, at: datetime, pi: str, target: str, status: str) -> None:
        chain.add(
            at,
            f"payment.{target}",
            actor_label="Stripe",
            before={"status": "pending", "payment_status": "pending"},
            after={"status": status, "payment_status": target},
            details={"payment_intent": pi, "source": "webhook", "error": ""},
        )

    def _cancelled(
        self, chain: _Chain, at: datetime, status: str, payment_status: str, reason: str
    ) -> None:
        staff = self.pick.choice(self.staff.approvers)
        chain.add(
            at,
            "order.cancelled",
            actor=staff,
            before={"status": status, "payment_status": payment_status},
            after={"status": "cancelled", "payment_status": "voided"},
            details={"reason": reason},
        )

    def _flag(
        self, ids: dict[str, _Ids], chain: _Chain, order_id: int, pi: str, at: datetime
    ) -> None:
        detail = (
            f"Stripe reports PaymentIntent {pi} succeeded, but our books have it "
            "requires_capture (captured 0, voided False)"
        )
        self.rows.attention.append(
            (ids["attention"].take(), order_id, "stripe_contradicts", pi, detail, _iso(at),
             None, None, "")
        )  # fmt: skip
        chain.add(
            at,
            "order.attention_flagged",
            actor_label="Stripe",
            details={"code": "stripe_contradicts", "subject": pi, "detail": detail},
        )

    def _refund(
        self,
        shape: _Shape,
        ids: dict[str, _Ids],
        chain: _Chain,
        order_id: int,
        payment_id: int,
        pi: str,
        charge: str,
        total: int,
        lines: list[tuple[str, int, int, int]],
        paid_at: datetime,
        ledger: list[tuple[str, int, str, datetime]],
    ) -> tuple[str, datetime]:
        pick, story = self.pick, shape.story
        asked = min(paid_at + timedelta(days=pick.uniform(1, 30)), self.now - timedelta(minutes=5))
        asked = max(asked, paid_at + timedelta(seconds=1))
        full = story == "refunded"
        _sku, qty, line_id, line_total = lines[0]
        amount = total if full else line_total
        if amount >= total and not full:
            amount = max(1, total // 2)
        requester = pick.choice(self.staff.refunders)
        refund_id = ids["refunds"].take()
        currency = shape.currency
        waiting = story == "awaiting_approval"
        status = "awaiting_approval" if waiting else "succeeded"
        re_id = None if waiting else _stripe_id("re", pick)
        settled = asked + timedelta(seconds=pick.uniform(1, 5))
        with_lines = not full and amount == line_total
        reason = pick.choice(REFUND_REASONS)
        self.rows.refunds.append(
            (
                refund_id, str(uuid.UUID(int=pick.getrandbits(128), version=4)), order_id,
                payment_id, status, amount, currency, reason, "", False, "shopkeeper",
                requester.pk, None, None, "", re_id, "",
                0 if waiting else 1, None if waiting else _iso(asked), _iso(asked),
                _iso(asked if waiting else settled), None if waiting else _iso(settled),
            )
        )  # fmt: skip
        if with_lines:
            self.rows.refund_lines.append(
                (ids["refund_lines"].take(), refund_id, line_id, qty, False, line_total)
            )
        money = str(Money(amount, currency))
        chain.add(
            asked,
            "order.refund.requested",
            actor=requester,
            after={"status": "awaiting_approval" if waiting else "pending"},
            details={
                "refund_id": refund_id,
                "amount": money,
                "stripe_refund_id": "",
                "reason": reason,
                "note": "",
                "include_shipping": False,
                "approval_because": ["over_limit"] if waiting else [],
                "lines": [{"line_id": line_id, "quantity": qty, "restock": False}]
                if with_lines
                else [],
            },
        )
        if waiting or re_id is None:
            return "paid", asked
        ledger.append(("refund", amount, re_id, settled))
        payment_status = "refunded" if amount >= total else "partially_refunded"
        chain.add(
            settled,
            "order.refund.succeeded",
            actor=requester,
            before={"status": "pending", "payment_status": "paid"},
            after={"status": "succeeded", "payment_status": payment_status},
            details={
                "refund_id": refund_id,
                "amount": money,
                "stripe_refund_id": re_id,
                "source": "api",
                "failure_reason": "",
            },
        )
        return payment_status, settled


def _columns(model: type[models.Model], names: Sequence[str]) -> str:
    columns = []
    for name in names:
        column = getattr(model._meta.get_field(name), "column", None)
        if not column:
            raise LookupError(f"{model.__name__}.{name} has no column")
        columns.append(str(column))
    return ", ".join(columns)


def _copy(cursor: Any, model: type[models.Model], names: Sequence[str], rows: list[Any]) -> None:
    if not rows:
        return
    sql = f"COPY {model._meta.db_table} ({_columns(model, names)}) FROM STDIN"
    with cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


_TABLES: dict[str, type[models.Model]] = {
    "orders": Order,
    "lines": OrderLine,
    "payments": Payment,
    "ledger": LedgerEntry,
    "refunds": Refund,
    "refund_lines": RefundLine,
    "attention": Attention,
}


_FILLED: tuple[type[models.Model], ...] = (*_TABLES.values(), AuditEntry, AuditChainHead)


def _reserve(counts: dict[str, int]) -> dict[str, _Ids]:
    """Take `counts[name]` ids from each table's sequence (and audit sequence numbers).

    The tables' EXCLUSIVE locks keep the shop's own inserts (which take ids from the same
    sequences) out between a `nextval` and its `setval`; they are held for that moment only.
    """
    tables = [model._meta.db_table for model in _FILLED if model is not AuditChainHead]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")
        ids = {}
        for name, model in _TABLES.items():
            table = model._meta.db_table
            ids[name] = _take(cursor, f"pg_get_serial_sequence('{table}', 'id')", counts[name])
        ids["audit"] = _take(cursor, f"'{SEQ_SEQUENCE}'", counts["audit"])
    return ids


def _take(cursor: Any, sequence_sql: str, count: int) -> _Ids:
    if count == 0:
        return _Ids(0, 0)
    cursor.execute(f"SELECT setval({sequence_sql}, nextval({sequence_sql}) + %s - 1)", [count])
    last = int(cursor.fetchone()[0])
    return _Ids(last - count + 1, count)


def _moments(count: int, *, end: datetime, pick: random.Random) -> Iterator[datetime]:
    """`count` moments over the two years before `end`, oldest first, as a growing shop's:
    twice the orders at the end as at the start, more by day than by night."""
    start = end - SPAN
    span = SPAN.total_seconds()
    points = []
    for _ in range(count):
        u = pick.random()
        position = (1 + 3 * u) ** 0.5 - 1  # density rising linearly from 1 to 2
        day = int(position * span // 86400)
        hour = _HOUR(pick)
        seconds = day * 86400 + hour * 3600 + pick.random() * 3600
        points.append(min(seconds, span - 1))
    for seconds in sorted(points):
        yield start + timedelta(seconds=seconds)


_HOURLY = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 10, 9, 9, 9, 9, 10, 11, 12, 11, 9, 6, 4)
_HOUR = _Weighted(tuple(enumerate(_HOURLY)))


def seed_orders_bulk(
    count: int,
    *,
    seed: int = 1,
    batch: int = BATCH,
    progress: Progress | None = None,
    now: datetime | None = None,
    workers: int = WORKERS,
) -> Counts:
    """Add `count` orders with their payments, ledger, refunds, flags and audit chains.

    Needs the demo catalog and the staff accounts (`seed` without `--orders` makes both).
    `workers` processes build the rows (hashing the chains is most of the work) while this one
    copies the batches already built; 0 builds them here.
    """
    now = now or timezone.now().astimezone(UTC)
    context = _context(now, count)
    pick = random.Random(seed)
    moments = _moments(count, end=now - timedelta(hours=1), pick=pick)
    currency = _Weighted([(code, w) for code, w in CURRENCIES if code in context.products])
    jobs = []
    for index, start in enumerate(range(0, count, batch)):
        shapes = [
            _Shape(
                story=_STORY(pick),
                created_at=next(moments),
                currency=currency(pick),
                line_count=_LINE_COUNT(pick),
            )
            for _ in range(min(batch, count - start))
        ]
        jobs.append((shapes, seed * 1_000_003 + index))
    total = Counts()
    for rows in _built(context, jobs, workers):
        total.add(_copy_batch(rows))
        if progress is not None:
            progress(total.orders, count)
    return total


@dataclass(frozen=True, slots=True)
class _Context:
    key: bytes
    products: dict[str, list[_Product]]
    staff: _Staff
    customers: int
    now: datetime


def _context(now: datetime, count: int) -> _Context:
    products: dict[str, list[_Product]] = {}
    for product in Product.objects.order_by("sku"):
        products.setdefault(product.currency, []).append(
            _Product(product.pk, product.sku, product.name, product.price_minor)
        )
    if not products:
        raise RuntimeError("no products to order: run `shopkeeper seed` first")

    def actors(*roles: str) -> tuple[_Actor, ...]:
        users = User.objects.filter(role__in=roles).order_by("pk")
        return tuple(_Actor(user.pk, user.email) for user in users)

    staff = _Staff(
        refunders=actors("support", "manager", "owner"), approvers=actors("manager", "owner")
    )
    if not staff.refunders or not staff.approvers:
        raise RuntimeError("no staff accounts to act: run `shopkeeper seed` first")
    customers = max(50, (Order.objects.count() + count) // 2)
    return _Context(audit_key(), products, staff, customers, now)


def _built(
    context: _Context, jobs: list[tuple[list[_Shape], int]], workers: int
) -> Iterator[_Rows]:
    """Each batch's rows, in order: ids reserved here, rows built by the worker processes."""
    reserved = ((shapes, batch_seed, _reserve(_needed(shapes))) for shapes, batch_seed in jobs)
    if workers <= 0 or len(jobs) == 1:  # one batch: nothing to overlap
        for shapes, batch_seed, ids in reserved:
            yield _build(context, shapes, batch_seed, ids)
        return
    # Forked workers only compute: they never touch the database connection they inherit.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pending: collections.deque[Future[_Rows]] = collections.deque()
        for shapes, batch_seed, ids in reserved:
            pending.append(pool.submit(_build, context, shapes, batch_seed, ids))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _build(context: _Context, shapes: list[_Shape], batch_seed: int, ids: dict[str, _Ids]) -> _Rows:
    builder = _Batch(
        pick=random.Random(batch_seed),
        key=context.key,
        products=context.products,
        staff=context.staff,
        customers=context.customers,
        now=context.now,
    )
    builder.build(shapes, ids)
    return builder.rows


def _needed(shapes: list[_Shape]) -> dict[str, int]:
    return {
        "orders": len(shapes),
        "lines": sum(shape.line_count for shape in shapes),
        "payments": len(shapes),
        "ledger": sum(shape.ledger_count() for shape in shapes),
        "refunds": sum(1 for shape in shapes if shape.refunded),
        "refund_lines": sum(1 for shape in shapes if shape.refunded),
        "attention": sum(1 for shape in shapes if shape.story == "flagged"),
        "audit": sum(shape.audit_count() for shape in shapes),
    }


def _copy_batch(rows: _Rows) -> Counts:
    with transaction.atomic(), connection.cursor() as wrapper:
        cursor = wrapper.cursor
        _copy(cursor, Order, ORDER_FIELDS, rows.orders)
        _copy(cursor, OrderLine, LINE_FIELDS, rows.lines)
        _copy(cursor, Payment, PAYMENT_FIELDS, rows.payments)
        _copy(cursor, LedgerEntry, LEDGER_FIELDS, rows.ledger)
        _copy(cursor, Refund, REFUND_FIELDS, rows.refunds)
        _copy(cursor, RefundLine, REFUND_LINE_FIELDS, rows.refund_lines)
        _copy(cursor, Attention, ATTENTION_FIELDS, rows.attention)
        _copy(cursor, AuditEntry, AUDIT_FIELDS, rows.audit)
        _copy(cursor, AuditChainHead, HEAD_FIELDS, rows.heads)
    return Counts(
        orders=len(rows.orders),
        lines=len(rows.lines),
        payments=len(rows.payments),
        ledger=len(rows.ledger),
        refunds=len(rows.refunds),
        attention=len(rows.attention),
        audit=len(rows.audit),
    )


def analyze() -> None:
    """Fresh planner statistics for the tables just filled."""
    with connection.cursor() as cursor:
        for model in _FILLED:
            cursor.execute(f"ANALYZE {model._meta.db_table}")
