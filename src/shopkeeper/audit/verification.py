"""`audit verify` and `audit anchor`: recompute every keyed chain; sign and check anchors.

Verification is one pass over the entries in (chain, chain_seq) order plus one indexed look-up
per chain head and per order, so it stays linear in the size of the log. An anchor is small
whatever the size: the cut's sequence number, counts and one keyed digest (chain.Cut).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import OperationalError, connection, transaction
from django.db.models import Exists, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from shopkeeper.audit.chain import (
    ChainProblem,
    ChainWalk,
    Cut,
    anchor_signature,
    head_mac,
)
from shopkeeper.audit.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from shopkeeper.audit.models import AuditChainHead, AuditEntry
from shopkeeper.audit.services import audit_key, stored_form

ANCHOR_VERSION = 1
CHECKPOINT_LOCK_TIMEOUT_MS = 1_000  # the most verify makes writers wait to find its cut
# A resumed run checks the trail of every order placed this long before its checkpoint or
# later: no shop transaction stays open that long, so none placed earlier committed after it.
RECENT_ORDERS = timedelta(hours=1)
PROGRESS_EVERY = 10_000  # entries between two redraws of the progress line
Progress = Callable[[int, int], None]
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
    last_order_id: int = 0  # the newest order in the snapshot verified


@dataclass(frozen=True, slots=True)
class Verdict:
    """What `audit verify` found, and where the next run resumes."""

    count: int  # entries checked
    problems: list[ChainProblem]
    resumed_from: Checkpoint | None = None  # None: every entry was checked
    checkpoint: Checkpoint | None = None  # saved by this run (None: not moved)


def inspect_log(*, cut_seq: int | None = None, progress: Progress | None = None) -> Report:
    """Every check that needs no anchor, in one consistent snapshot; with `cut_seq`, the cut too."""
    snapshot = not connection.in_atomic_block
    with transaction.atomic():
        if snapshot:  # entries and heads read as of one moment, while the shop goes on writing
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        walk = ChainWalk(audit_key(), cut_seq=cut_seq)
        total = AuditEntry.objects.count() if progress is not None else 0
        walk.walk(_told(_entries_by_chain(), progress, total))
        problems = [*walk.problems, *_head_problems(), *_chainless_orders()]
        last_order_id = _last_order_id()
    return Report(walk.count, problems, walk.cut(), last_order_id)


def inspect_since(
    checkpoint: Checkpoint, *, cut_seq: int | None = None, progress: Progress | None = None
) -> Report:
    """The checks of `inspect_log` for what came after `checkpoint`, in one snapshot.

    Entries above its cut are checked as a full run checks them, each grown chain from the
    entry it continues (a link to a removed or edited one is found); the heads and trails of
    what changed since are checked; below the cut, only that as many entries and chains are
    there as the checkpoint counted (an edit below it needs `--full`). With `cut_seq`, the
    cut there is computed from the checkpoint's without reading what lies below.
    """
    snapshot = not connection.in_atomic_block
    old = checkpoint.cut
    with transaction.atomic():
        if snapshot:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        key = audit_key()
        walk = ChainWalk(key, cut_seq=cut_seq)
        resumed = ChainWalk(key, cut_seq=old.seq)  # the chains' old ends: their cut terms
        total = AuditEntry.objects.filter(seq__gt=old.seq).count() if progress else 0
        for entry in _told(_entries_after(old.seq), progress, total):
            if entry["seq"] <= old.seq:
                walk.resume(entry)
                resumed.resume(entry)
            else:
                walk.add(entry)
        walk.walk(())
        resumed.walk(())
        grown = AuditEntry.objects.filter(seq__gt=old.seq).values("chain")
        problems = [
            *_count_problems(old),
            *walk.problems,
            *_head_problems(grown, after_seq=old.seq),
            *_heads_counted(old),
            *_chainless_orders(since=checkpoint),
        ]
        last_order_id = _last_order_id()
    return Report(walk.count, problems, _moved(old, walk.cut(), resumed.cut()), last_order_id)


def _told(
    entries: Iterator[dict[str, Any]], progress: Progress | None, total: int
) -> Iterator[dict[str, Any]]:
    """The entries, telling `progress` every PROGRESS_EVERY of them (and at the end)."""
    done = 0
    for entry in entries:
        yield entry
        done += 1
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, max(total, done))
    if progress is not None:
        progress(done, max(total, done))


def _moved(old: Cut, grown: Cut | None, resumed: Cut | None) -> Cut | None:
    """The cut at the new sequence number: the old one, less the old ends of the chains that
    grew since (`resumed`), plus their new ends and the new chains (`grown`)."""
    if grown is None or resumed is None or grown.seq < old.seq:
        return None
    digest = (int(old.digest, 16) - int(resumed.digest, 16) + int(grown.digest, 16)) % 2**256
    return Cut(
        grown.seq,
        old.entries - resumed.entries + grown.entries,
        old.chains - resumed.chains + grown.chains,
        f"{digest:064x}",
    )


def _entries_after(seq: int) -> Iterator[dict[str, Any]]:
    """Entries above `seq`, and for each chain among them the entry it continues from, in
    (chain, chain_seq) order."""
    fields = [f for f in AuditEntry._meta.concrete_fields if f.attname != "id"]
    columns = ", ".join(f"e.{connection.ops.quote_name(str(f.column))}" for f in fields)
    table = AuditEntry._meta.db_table
    sql = (
        f"SELECT {columns} FROM {table} e WHERE e.seq > %s UNION ALL "
        f"SELECT {columns} FROM {table} e JOIN (SELECT chain, MIN(chain_seq) AS first "
        f"FROM {table} WHERE seq > %s GROUP BY chain) grown "
        "ON e.chain = grown.chain AND e.chain_seq = grown.first - 1 "
        "ORDER BY chain, chain_seq"
    )
    names = [f.attname for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, [seq, seq])
        for rows in iter(lambda: cursor.fetchmany(5000), []):
            for row in rows:
                entry = dict(zip(names, row, strict=True))
                for name in ("before", "after", "details"):
                    entry[name] = _json(entry[name])
                yield {**stored_form(entry), "prev_hash": entry["prev_hash"], "hash": entry["hash"]}


def _json(text: Any) -> Any:
    """A JSON column read by raw SQL: its text (Django's loader), decoded as the ORM does."""
    return json.loads(text) if isinstance(text, str) else text


def _count_problems(old: Cut) -> list[ChainProblem]:
    """Below the checkpoint nothing may be removed or added."""
    found = AuditEntry.objects.filter(seq__lte=old.seq).count()
    if found == old.entries:
        return []
    return [
        ChainProblem(
            None,
            f"the log holds {found} entries up to #{old.seq}; the checkpoint verified "
            f"{old.entries} there (entries removed or added below it: run `audit verify --full`)",
        )
    ]


def _heads_counted(old: Cut) -> list[ChainProblem]:
    """One head per chain: those at the checkpoint, and one per chain begun since."""
    begun = AuditEntry.objects.filter(seq__gt=old.seq, chain_seq=1).count()
    heads = AuditChainHead.objects.count()
    if heads == old.chains + begun:
        return []
    return [
        ChainProblem(
            None,
            f"{heads} chain heads for {old.chains} chains at the checkpoint and {begun} begun "
            "since (heads removed or added: run `audit verify --full`)",
        )
    ]


def _last_order_id() -> int:
    order_model = apps.get_model("orders", "Order")
    return order_model.objects.aggregate(top=Max("pk"))["top"] or 0


def _entries_by_chain() -> Iterator[dict[str, Any]]:
    rows = AuditEntry.objects.order_by("chain", "chain_seq").values()
    for row in rows.iterator(chunk_size=5000):
        yield {**stored_form(row), "prev_hash": row["prev_hash"], "hash": row["hash"]}


def _head_problems(
    chains: QuerySet[AuditEntry, Any] | None = None, *, after_seq: int = 0
) -> Iterator[ChainProblem]:
    """Each chain's newest entry is its sealed head; no chain lost its head or its entries.
    (With `chains`: those chains' heads, and heads lost by chains begun after `after_seq`.)"""
    key = audit_key()
    at_head = AuditEntry.objects.filter(chain=OuterRef("chain"), chain_seq=OuterRef("chain_seq"))
    beyond = AuditEntry.objects.filter(chain=OuterRef("chain"), chain_seq__gt=OuterRef("chain_seq"))
    heads = AuditChainHead.objects.annotate(
        entry_hash=Subquery(at_head.values("hash")[:1]),
        entry_seq=Subquery(at_head.values("seq")[:1]),
        newer=Exists(beyond),
    ).order_by()
    if chains is not None:
        heads = heads.filter(chain__in=chains)
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
    headless = AuditEntry.objects.filter(chain_seq=1, seq__gt=after_seq).exclude(
        Exists(AuditChainHead.objects.filter(chain=OuterRef("chain")))
    )
    for entry in headless.values("seq", "chain").iterator(chunk_size=5000):
        yield ChainProblem(entry["seq"], f"{entry['chain']}: its head was removed")


def _chainless_orders(since: Checkpoint | None = None) -> Iterator[ChainProblem]:
    """Every order is placed with an audit entry, so an order without a chain lost its trail.

    `since` a checkpoint: the orders after its newest one, and those placed within
    RECENT_ORDERS of it (an order placed then may have committed after that newest one).
    """
    order_model = apps.get_model("orders", "Order")
    placed = AuditEntry.objects.filter(target_type="order", target_id=OuterRef("number"))
    orders = order_model.objects.all()
    if since is not None:
        orders = orders.filter(
            Q(pk__gt=since.last_order_id) | Q(created_at__gte=since.verified_at - RECENT_ORDERS)
        )
    orphans = orders.exclude(Exists(placed)).order_by().values_list("number")
    for (number,) in orphans.iterator(chunk_size=5000):
        yield ChainProblem(None, f"order:{number}: the order exists but its audit trail is gone")


def anchor_cut_seq(lock_timeout_ms: int | None = None) -> int:
    """The newest sequence number below which no entry can still be on its way.

    SHARE mode waits for every transaction holding ROW EXCLUSIVE on the entries or the chain
    heads (each writer takes the heads' before its number) and is held for one index look-up;
    writers only pause while it is held or awaited.
    """
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                timeout = ANCHOR_LOCK_TIMEOUT_MS if lock_timeout_ms is None else lock_timeout_ms
                cursor.execute(f"SET LOCAL lock_timeout = {int(timeout)}")
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


def verify_audit_log(
    anchor: Mapping[str, Any] | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
) -> Verdict:
    """Verify the log: from the last checkpoint on, or every entry (`full`, or before the
    first checkpoint). A sound run moves the checkpoint to the cut it verified. With an
    anchor, every entry, and what the anchor signed; the checkpoint stays where it was.

    CheckpointRefused when the checkpoint's seal fails (unless `full`); AnchorUnreadable when
    the anchor's does.
    """
    if anchor is not None:
        anchored = check_anchor(anchor)
        report = inspect_log(cut_seq=anchored.seq, progress=progress)
        assert report.cut is not None
        when = str(anchor["created_at"])
        return Verdict(
            report.count, [*report.problems, *anchor_problems(anchored, report.cut, when=when)]
        )
    checkpoint = None if full else load_checkpoint()
    cut_seq = _checkpoint_cut_seq()
    if checkpoint is None:
        report = inspect_log(cut_seq=cut_seq, progress=progress)
    else:
        report = inspect_since(checkpoint, cut_seq=cut_seq, progress=progress)
    saved = None
    if not report.problems and report.cut is not None:
        saved = Checkpoint(report.cut, report.last_order_id, timezone.now())
        save_checkpoint(saved)
    return Verdict(report.count, report.problems, resumed_from=checkpoint, checkpoint=saved)


def _checkpoint_cut_seq() -> int | None:
    """The cut a checkpoint may be taken at; None when writers keep the log busy (briefly:
    verifying must not hold the shop up), and then the checkpoint stays where it was."""
    try:
        return anchor_cut_seq(CHECKPOINT_LOCK_TIMEOUT_MS)
    except LogBusy:
        return None
