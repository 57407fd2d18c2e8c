"""The audit hash chain, pure: each entry's hash covers its content and the previous hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64
CHAINED_FIELDS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_email",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "before",
    "after",
    "details",
    "ip",
    "user_agent",
    "request_id",
)


def entry_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {name: content.get(name) for name in CHAINED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(f"{prev_hash}|{canonical}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int | None
    problem: str


def verify_chain(entries: Iterable[Mapping[str, Any]]) -> list[ChainProblem]:
    """Entries in seq order, each with CHAINED_FIELDS plus prev_hash and hash."""
    problems: list[ChainProblem] = []
    prev_hash, expected_seq = GENESIS_HASH, 1
    for entry in entries:
        seq = entry["seq"]
        if seq != expected_seq:
            problems.append(
                ChainProblem(seq, f"entries missing before #{seq} (expected #{expected_seq})")
            )
        if entry["prev_hash"] != prev_hash:
            problems.append(
                ChainProblem(seq, "previous-hash link broken (an entry was removed or edited)")
            )
        if entry_hash(entry["prev_hash"], entry) != entry["hash"]:
            problems.append(ChainProblem(seq, "content does not match its hash (entry edited)"))
        prev_hash, expected_seq = entry["hash"], seq + 1
    return problems
