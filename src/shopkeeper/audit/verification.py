"""`audit verify` and `audit anchor`: recompute every keyed chain; sign and check anchors.

Verification is one pass over the entries in (chain, chain_seq) order plus one indexed look-up
per chain head and per order, so it stays linear in the size of the log. An anchor is small
whatever the size: the cut's sequence number, counts and one keyed digest (chain.Cut).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import OperationalError, connection, transaction
from django.db.models import Exists, Max, OuterRef, Subquery
from django.utils import timezone

from shopkeeper.audit.chain import (
    ChainProblem,
    ChainWalk,
    Cut,
    anchor_signature,
    head_mac,
)
from shopkeeper.audit.models import AuditChainHead, AuditEntry
from shopkeeper.audit.services import audit_key, stored_form

ANCHOR_VERSION = 1
ANCHOR_LOCK_TIMEOUT_MS = (
    30_000  # longer than any shop transaction; the shop's writes wait meanwhile
)
_ANCHOR_FIELDS = {"version", "seq", "entries", "chains", "digest", "created_at", "signature"}


class AnchorUnreadable(ValueError):
    code = "audit_anchor_unreadable"


class LogBroken(RuntimeError):
    code = "audit_log_broken"


class LogBusy(RuntimeError):
    code = "audit_log_busy"


@dataclass(frozen=True, slots=True)
class Report:
    count: int
    problems: list[ChainProblem]
    cut: Cut | None


def inspect_log(*, cut_seq: int | None = None) -> Report:
    """Every check that needs no anchor, in one consistent snapshot; with `cut_seq`, the cut too."""
    snapshot = not connection.in_atomic_block
    with transaction.atomic():
        if snapshot:  # entries and heads read as of one moment, while the shop goes on writing
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        walk = ChainWalk(audit_key(), cut_seq=cut_seq)
        walk.walk(_entries_by_chain())
        problems = [*walk.problems, *_head_problems(), *_chainless_orders()]
    return Report(walk.count, problems, walk.cut())


def _entries_by_chain() -> Iterator[dict[str, Any]]:
    rows = AuditEntry.objects.order_by("chain", "chain_seq").values()
    for row in rows.iterator(chunk_size=5000):
        yield {**stored_form(row), "prev_hash": row["prev_hash"], "hash": row["hash"]}


def _head_problems() -> Iterator[ChainProblem]:
    """Each chain's newest entry is its sealed head; no chain lost its head or its entries."""
    key = audit_key()
    at_head = AuditEntry.objects.filter(chain=OuterRef("chain"), chain_seq=OuterRef("chain_seq"))
    beyond = AuditEntry.objects.filter(chain=OuterRef("chain"), chain_seq__gt=OuterRef("chain_seq"))
    heads = AuditChainHead.objects.annotate(
        entry_hash=Subquery(at_head.values("hash")[:1]),
        entry_seq=Subquery(at_head.values("seq")[:1]),
        newer=Exists(beyond),
    ).order_by()
    for head in heads.values().iterator(chunk_size=5000):
        where, chain = head["entry_seq"], head["chain"]
        if not hmac.compare_digest(
            head["mac"], head_mac(key, chain, head["chain_seq"], head["hash"])
        ):
            yield ChainProblem(where, f"{chain}: head seal invalid (entries removed, head reset)")
        elif head["entry_hash"] != head["hash"] and head["chain_seq"]:
            yield ChainProblem(where, f"{chain}: its newest entries were removed")
        if head["newer"]:
            yield ChainProblem(where, f"{chain}: entries beyond its head")
    headless = AuditEntry.objects.filter(chain_seq=1).exclude(
        Exists(AuditChainHead.objects.filter(chain=OuterRef("chain")))
    )
    for entry in headless.values("seq", "chain").iterator(chunk_size=5000):
        yield ChainProblem(entry["seq"], f"{entry['chain']}: its head was removed")


def _chainless_orders() -> Iterator[ChainProblem]:
    """Every order is placed with an audit entry, so an order without a chain lost its trail."""
    order_model = apps.get_model("orders", "Order")
    placed = AuditEntry.objects.filter(target_type="order", target_id=OuterRef("number"))
    orphans = order_model.objects.exclude(Exists(placed)).order_by().values_list("number")
    for (number,) in orphans.iterator(chunk_size=5000):
        yield ChainProblem(None, f"order:{number}: the order exists but its audit trail is gone")


def anchor_cut_seq() -> int:
    """The newest sequence number below which no entry can still be on its way.

    SHARE mode waits for every transaction holding ROW EXCLUSIVE on the entries or the chain
    heads (each writer takes the heads' before its number) and is held for one index look-up;
    writers only pause while it is held or awaited.
    """
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = {int(ANCHOR_LOCK_TIMEOUT_MS)}")
                # Writers take their number holding the head table's ROW EXCLUSIVE lock.
                tables = f"{AuditEntry._meta.db_table}, {AuditChainHead._meta.db_table}"
                cursor.execute(f"LOCK TABLE {tables} IN SHARE MODE")
            return AuditEntry.objects.aggregate(top=Max("seq"))["top"] or 0
    except OperationalError as error:  # a writer kept its transaction open for 30 s
        raise LogBusy("a transaction writing to the audit log stayed open: try again") from error


def make_anchor() -> dict[str, Any]:
    """The signed cut of the log as it stands; refused when the log is already broken."""
    report = inspect_log(cut_seq=anchor_cut_seq())
    if report.problems:
        raise LogBroken(f"{len(report.problems)} problem(s): the log is not anchored")
    assert report.cut is not None
    body: dict[str, Any] = {
        "version": ANCHOR_VERSION,
        "seq": report.cut.seq,
        "entries": report.cut.entries,
        "chains": report.cut.chains,
        "digest": report.cut.digest,
        "created_at": timezone.now().isoformat(),
    }
    return {**body, "signature": anchor_signature(audit_key(), body)}


def check_anchor(anchor: Any) -> Cut:
    """The cut an anchor file vouches for; AnchorUnreadable if it is malformed or not ours."""
    if not isinstance(anchor, Mapping) or set(anchor) != _ANCHOR_FIELDS:
        raise AnchorUnreadable("not a Shopkeeper audit anchor")
    if anchor["version"] != ANCHOR_VERSION:
        raise AnchorUnreadable(f"anchor version {anchor['version']!r} is not known")
    expected = anchor_signature(audit_key(), anchor)
    if not isinstance(anchor["signature"], str) or not hmac.compare_digest(
        anchor["signature"], expected
    ):
        raise AnchorUnreadable("signature invalid: altered, or signed with another key")
    return Cut(int(anchor["seq"]), int(anchor["entries"]), int(anchor["chains"]), anchor["digest"])


def anchor_problems(anchored: Cut, found: Cut, *, when: str) -> list[ChainProblem]:
    if found.entries < anchored.entries or found.chains < anchored.chains:
        return [
            ChainProblem(
                None,
                f"the log holds {found.entries} entries in {found.chains} chains up to "
                f"#{anchored.seq}; the anchor of {when} signed {anchored.entries} entries in "
                f"{anchored.chains} chains (entries removed)",
            )
        ]
    if found != anchored:
        return [
            ChainProblem(
                None,
                f"the entries up to #{anchored.seq} are not those the anchor of {when} signed "
                "(entries removed, replaced or renumbered)",
            )
        ]
    return []


def verify_audit_log(anchor: Mapping[str, Any] | None = None) -> tuple[int, list[ChainProblem]]:
    """(number of entries, problems found); with an anchor, also the log it vouches for."""
    if anchor is None:
        report = inspect_log()
        return report.count, report.problems
    anchored = check_anchor(anchor)
    report = inspect_log(cut_seq=anchored.seq)
    assert report.cut is not None
    when = str(anchor["created_at"])
    return report.count, [*report.problems, *anchor_problems(anchored, report.cut, when=when)]
