"""The keyed audit chains, pure: one chain per audited object, sealed with HMAC-SHA256.

Each entry's `hash` is HMAC(key, previous hash of its chain + its content), and each chain's
head row carries its own HMAC, so nobody without the key can edit an entry, rehash the rest of a
chain, or cut the newest entries off and "fix" the head. There is no single head for the whole
log: an anchor signs a digest over every chain's head up to a global sequence number instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GENESIS_HASH = "0" * 64
CHAINED_FIELDS = (
    "chain",
    "chain_seq",
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
_MODULUS = 2**256


def chain_name(target_type: str, target_id: str) -> str:
    return f"{target_type}:{target_id}"


def _mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


def entry_hash(key: bytes, prev_hash: str, content: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {name: content.get(name) for name in CHAINED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return _mac(key, "entry", prev_hash, canonical)


def head_mac(key: bytes, chain: str, chain_seq: int, hash_: str) -> str:
    """The head's own seal: the attacker who deletes a chain's newest entry cannot redo it."""
    return _mac(key, "head", chain, str(chain_seq), hash_)


def _cut_term(key: bytes, chain: str, chain_seq: int, hash_: str) -> int:
    return int(_mac(key, "cut", chain, str(chain_seq), hash_), 16)


def anchor_signature(key: bytes, body: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {k: v for k, v in body.items() if k != "signature"}, sort_keys=True, separators=(",", ":")
    )
    return _mac(key, "anchor", canonical)


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int | None
    problem: str


@dataclass(frozen=True, slots=True)
class Cut:
    """What an anchor signs: the log up to global sequence number `seq`.

    `digest` is the sum (mod 2**256) of one keyed term per chain for its last entry at or below
    `seq`: independent of the order chains are read in, and unforgeable without the key.
    """

    seq: int
    entries: int
    chains: int
    digest: str


@dataclass(slots=True)
class ChainWalk:
    """Checks entries read in (chain, chain_seq) order, in one pass, in constant memory."""

    key: bytes
    cut_seq: int | None = None
    count: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    _chain: str | None = None
    _prev: Mapping[str, Any] | None = None
    _cut_last: Mapping[str, Any] | None = None
    _cut_entries: int = 0
    _cut_chains: int = 0
    _cut_sum: int = 0

    def walk(self, entries: Iterable[Mapping[str, Any]]) -> None:
        for entry in entries:
            self.add(entry)
        self._close_chain()

    def add(self, entry: Mapping[str, Any]) -> None:
        self.count += 1
        if entry["chain"] != self._chain:
            self._close_chain()
            self._chain = entry["chain"]
        self._check_link(entry)
        if entry_hash(self.key, entry["prev_hash"], entry) != entry["hash"]:
            self._report(entry, "content does not match its keyed hash (entry edited or forged)")
        if self.cut_seq is not None and entry["seq"] <= self.cut_seq:
            self._cut_entries += 1
            self._cut_last = entry
        self._prev = entry

    def resume(self, entry: Mapping[str, Any]) -> None:
        """Continue a chain from `entry`, verified by an earlier run (`audit verify` resuming
        from its checkpoint): the entries after it are checked against it. Its own keyed hash
        is checked again (it costs one HMAC); it is not counted."""
        if entry["chain"] != self._chain:
            self._close_chain()
            self._chain = entry["chain"]
        if entry_hash(self.key, entry["prev_hash"], entry) != entry["hash"]:
            self._report(entry, "content does not match its keyed hash (entry edited or forged)")
        if self.cut_seq is not None and entry["seq"] <= self.cut_seq:
            self._cut_entries += 1
            self._cut_last = entry
        self._prev = entry

    def _check_link(self, entry: Mapping[str, Any]) -> None:
        prev = self._prev
        expected_seq = prev["chain_seq"] + 1 if prev else 1
        if entry["chain_seq"] != expected_seq:
            self._report(entry, f"entries missing before #{entry['chain_seq']} of its chain")
        if entry["prev_hash"] != (prev["hash"] if prev else GENESIS_HASH):
            self._report(entry, "previous-hash link broken (an entry was removed or edited)")
        if prev and entry["seq"] <= prev["seq"]:
            self._report(entry, "out of order with the entry before it in its chain")

    def _report(self, entry: Mapping[str, Any], problem: str) -> None:
        self.problems.append(ChainProblem(entry["seq"], f"{entry['chain']}: {problem}"))

    def _close_chain(self) -> None:
        last = self._cut_last
        if last is not None:
            self._cut_chains += 1
            term = _cut_term(self.key, last["chain"], last["chain_seq"], last["hash"])
            self._cut_sum = (self._cut_sum + term) % _MODULUS
        self._chain, self._prev, self._cut_last = None, None, None

    def cut(self) -> Cut | None:
        if self.cut_seq is None:
            return None
        return Cut(self.cut_seq, self._cut_entries, self._cut_chains, f"{self._cut_sum:064x}")
