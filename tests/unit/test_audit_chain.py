"""The keyed chain, pure: the key decides every hash, and a cut's digest ignores reading order."""

from __future__ import annotations

from typing import Any

from shopkeeper.audit.chain import GENESIS_HASH, ChainWalk, anchor_signature, entry_hash, head_mac

KEY = b"k" * 32


def chain(name: str, count: int, *, first_seq: int, key: bytes = KEY) -> list[dict[str, Any]]:
    entries, prev = [], GENESIS_HASH
    for n in range(1, count + 1):
        entry = {"chain": name, "chain_seq": n, "seq": first_seq + n, "action": "a"}
        entry |= {"prev_hash": prev, "hash": entry_hash(key, prev, entry)}
        entries.append(entry)
        prev = entry["hash"]
    return entries


def test_given_another_key_then_every_seal_differs():
    content = {"chain": "order:SK-1", "chain_seq": 1, "seq": 1}
    assert entry_hash(KEY, GENESIS_HASH, content) != entry_hash(b"x", GENESIS_HASH, content)
    assert head_mac(KEY, "order:SK-1", 1, "h") != head_mac(b"x", "order:SK-1", 1, "h")
    assert head_mac(KEY, "order:SK-1", 1, "h") != head_mac(KEY, "order:SK-1", 2, "h")
    assert anchor_signature(KEY, {"seq": 1}) != anchor_signature(KEY, {"seq": 2})


def test_given_sound_chains_then_the_walk_finds_nothing_and_counts_the_cut():
    a, b = chain("order:A", 3, first_seq=0), chain("order:B", 2, first_seq=10)
    walk = ChainWalk(KEY, cut_seq=11)
    walk.walk([*a, *b])
    assert walk.problems == [] and walk.count == 5
    cut = walk.cut()
    assert cut is not None and (cut.seq, cut.entries, cut.chains) == (11, 4, 2)


def test_given_chains_read_in_another_order_then_the_cut_digest_is_the_same():
    a, b = chain("order:A", 3, first_seq=0), chain("order:B", 2, first_seq=10)
    first, second = ChainWalk(KEY, cut_seq=99), ChainWalk(KEY, cut_seq=99)
    first.walk([*a, *b])
    second.walk([*b, *a])
    assert first.cut() == second.cut()


def test_given_a_chain_hashed_with_another_key_then_every_entry_is_reported():
    walk = ChainWalk(KEY)
    walk.walk(chain("order:A", 2, first_seq=0, key=b"guess"))
    assert [p.seq for p in walk.problems] == [1, 2]
    assert all("content does not match its keyed hash" in p.problem for p in walk.problems)
