#!/usr/bin/env python3
"""How long `audit verify` and `audit anchor` take on a large log, and what one append costs.

    .venv/bin/python bench/audit_verify.py                      # embedded PostgreSQL, temp dir
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sk_bench .venv/bin/python bench/audit_verify.py

The log is written directly (untimed), sealed exactly as `record` seals it: `--orders` orders
with `--per-order` entries each in their own chains, plus as many again on staff chains. Then
`verify --full` is timed (it leaves a checkpoint), `--appends` entries are written through
`record` (timed each), then the resumed `verify` (only the appends), `verify --full` again,
anchor and verify --anchor are timed. With DATABASE_URL the script migrates and fills that
database: give it one of its own (a second run adds to it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from refund_latency import bench_database  # noqa: E402


def configure(tmp: str) -> None:
    os.environ["DATABASE_URL"] = bench_database()
    os.environ["DJANGO_SETTINGS_MODULE"] = "shopkeeper.settings"
    os.environ["SHOPKEEPER_LOG_LEVEL"] = "WARNING"
    os.environ["SHOPKEEPER_DATA_DIR"] = tmp
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(orders: int, per_order: int) -> int:
    """Orders and their sealed chains, written in batches; returns the entries written."""
    from django.db import connection, transaction
    from django.db.models import Max
    from django.utils import timezone

    from shopkeeper.audit.chain import entry_hash, head_mac
    from shopkeeper.audit.models import AuditChainHead, AuditEntry
    from shopkeeper.audit.services import SEQ_SEQUENCE, audit_key, stored_form
    from shopkeeper.orders.models import Order

    key, run = audit_key(), f"{int(time.time()):x}"[-6:]
    seq = AuditEntry.objects.aggregate(top=Max("seq"))["top"] or 0
    chains = [("order", f"B{run}-{n}") for n in range(orders)]
    chains += [("user", f"staff-{run}-{n}") for n in range(orders)]
    for start in range(0, len(chains), 2000):
        with transaction.atomic():
            entries, heads = [], []
            for target_type, target_id in chains[start : start + 2000]:
                prev, chain = "0" * 64, f"{target_type}:{target_id}"
                for n in range(1, per_order + 1):
                    seq += 1
                    content: dict[str, Any] = {
                        "chain": chain, "chain_seq": n, "seq": seq,
                        "created_at": timezone.now(), "actor_id": None, "actor_email": "Bench",
                        "action": "order.note", "target_type": target_type,
                        "target_id": target_id, "target_label": target_id,
                        "before": {"status": "pending"}, "after": {"status": "paid", "n": n},
                        "details": {}, "ip": "203.0.113.9", "user_agent": "bench",
                        "request_id": "bench",
                    }  # fmt: skip
                    digest = entry_hash(key, prev, stored_form(content))
                    entries.append(AuditEntry(prev_hash=prev, hash=digest, **content))
                    prev = digest
                heads.append(
                    AuditChainHead(
                        chain=chain, chain_seq=per_order, hash=prev,
                        mac=head_mac(key, chain, per_order, prev),
                    )
                )  # fmt: skip
            AuditEntry.objects.bulk_create(entries, batch_size=1000)
            AuditChainHead.objects.bulk_create(heads, batch_size=1000)
            Order.objects.bulk_create(
                Order(number=target_id, email="b@example.com", currency="USD",
                      subtotal_minor=100, shipping_minor=0, grand_total_minor=100)
                for target_type, target_id in chains[start : start + 2000]
                if target_type == "order"
            )  # fmt: skip
    with connection.cursor() as cursor:  # what `record` numbers next
        cursor.execute("SELECT setval(%s, %s)", [SEQ_SEQUENCE, seq])
        cursor.execute("ANALYZE")  # as autovacuum would after a load this size
    return len(chains) * per_order


def timed(*args: str) -> tuple[float, str]:
    from django.core.management import call_command

    out, started = io.StringIO(), time.perf_counter()
    call_command("audit", *args, stdout=out)
    return time.perf_counter() - started, out.getvalue().strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=12_500)
    parser.add_argument("--per-order", type=int, default=4)
    parser.add_argument("--appends", type=int, default=500)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configure(tmp)
        from shopkeeper.audit.models import AuditEntry
        from shopkeeper.audit.services import record

        fill(options.orders, options.per_order)
        full_s, full_verdict = timed("verify", "--full")  # and leaves its checkpoint
        append_ms = []
        for n in range(options.appends):
            started = time.perf_counter()
            record(action="order.note", target_type="order", target_id=f"APPEND-{n % 50}")
            append_ms.append((time.perf_counter() - started) * 1000)
        entries = AuditEntry.objects.count()
        verify_s, verdict = timed("verify")  # resumed: the appends since the checkpoint
        again_s, _ = timed("verify", "--full")
        anchor_file = Path(tmp) / "anchor.json"
        anchor_s, _ = timed("anchor", "--output", str(anchor_file))
        against_s, against = timed("verify", "--anchor", str(anchor_file))
        result = {
            "entries": entries,
            "verify_full_s": round(full_s, 2),
            "verify_resumed_s": round(verify_s, 3),
            "resumed_entries": options.appends,
            "verify_full_again_s": round(again_s, 2),
            "anchor_s": round(anchor_s, 2),
            "verify_anchor_s": round(against_s, 2),
            "anchor_bytes": anchor_file.stat().st_size,
            "append_p50_ms": round(statistics.median(append_ms), 2),
            "append_p95_ms": round(statistics.quantiles(append_ms, n=20)[-1], 2),
        }
        print(json.dumps(result))
        print(f"{full_verdict} | {verdict} | {against}")
        per_million = (full_s + again_s) / 2 / entries * 1_000_000
        print(
            f"verify --full: {full_s:.2f} s / {again_s:.2f} s for {entries:,} entries "
            f"({per_million:.0f} s per million, so ~{per_million * 3 / 60:.1f} min for 3 M); "
            f"resumed after {options.appends} appends: {verify_s:.3f} s "
            f"({min(full_s, again_s) / max(verify_s, 1e-9):.0f}x faster than a full run)"
        )


if __name__ == "__main__":
    main()
