"""`audit verify` resumes from its sealed checkpoint: it checks only what came after, still
finds every edit, forgery, gap and head problem there, refuses a forged checkpoint, and
`--full` finds what lies below it (docs/audit.md)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db.models import Max

from shopkeeper.audit.models import AuditChainHead, AuditCheckpoint, AuditEntry
from shopkeeper.audit.verification import inspect_log
from tests.audit_fixtures import add_entries, as_superuser, audit, verify
from tests.factories import new_order

pytestmark = pytest.mark.django_db


def checkpoint() -> AuditCheckpoint:
    return AuditCheckpoint.objects.get()


def edit(entry: AuditEntry, **fields) -> None:
    with as_superuser():
        AuditEntry.objects.filter(pk=entry.pk).update(**fields)


def full() -> tuple[int, str]:
    return audit("verify", "--full")


def test_given_a_checkpoint_then_only_the_entries_after_it_are_checked():
    add_entries(5)
    assert verify() == (0, "OK 5 entries\n")
    mark = checkpoint()
    add_entries(2, target="SK-1")  # an old chain grows
    add_entries(1, target="SK-NEW")  # and a new one begins

    code, output = verify()

    assert code == 0
    assert output.startswith(f"OK 3 entries after checkpoint #{mark.seq} of ")
    assert "(5 entries at or below it were verified then; --full checks them again)" in output
    assert checkpoint().seq == AuditEntry.objects.aggregate(top=Max("seq"))["top"]
    assert full() == (0, "OK 8 entries\n")


def test_given_a_resumed_run_then_its_checkpoint_is_the_cut_a_full_run_computes():
    add_entries(4)
    verify()
    add_entries(3, target="SK-2")
    add_entries(2)
    verify()
    resumed = checkpoint()

    cut = inspect_log(cut_seq=resumed.seq).cut

    assert cut is not None
    assert (resumed.entries, resumed.chains, resumed.digest) == (
        cut.entries,
        cut.chains,
        cut.digest,
    )


def test_given_an_edit_above_the_checkpoint_then_a_resumed_run_finds_it():
    add_entries(3)
    verify()
    (later,) = add_entries(1, target="SK-0")
    edit(later, details={"text": "rewritten"})

    code, output = verify()

    assert code == 1
    assert f"BROKEN #{later.seq}: order:SK-0: content does not match its keyed hash" in output


def test_given_an_edit_below_the_checkpoint_then_only_full_finds_it():
    (early, *_) = add_entries(3)
    verify()
    edit(early, details={"text": "rewritten"})

    assert verify()[0] == 0  # resumed: what it verified before is not read again
    code, output = full()
    assert code == 1
    assert f"BROKEN #{early.seq}: order:SK-0: content does not match its keyed hash" in output


def test_given_the_entry_a_grown_chain_continues_from_removed_then_the_gap_is_found():
    _, second = add_entries(2, target="SK-ONE")
    verify()
    (third,) = add_entries(1, target="SK-ONE")
    with as_superuser():
        AuditEntry.objects.filter(pk=second.pk).delete()

    code, output = verify()

    assert code == 1
    assert f"BROKEN #{third.seq}: order:SK-ONE: entries missing before #3" in output


def test_given_entries_removed_below_the_checkpoint_then_a_resumed_run_counts_them_missing():
    entries = add_entries(4)
    verify()
    mark = checkpoint()
    with as_superuser():  # a whole chain of its own, head and all
        AuditEntry.objects.filter(pk=entries[1].pk).delete()
        AuditChainHead.objects.filter(chain=entries[1].chain).delete()

    code, output = verify()

    assert code == 1
    assert f"the log holds 3 entries up to #{mark.seq}; the checkpoint verified 4 there" in output
    assert verify()[0] == 1  # a broken run leaves the checkpoint where it was


def test_given_a_head_removed_from_a_chain_that_did_not_grow_then_a_resumed_run_finds_it():
    entries = add_entries(3)
    verify()
    with as_superuser():
        AuditChainHead.objects.filter(chain=entries[0].chain).delete()

    code, output = verify()

    assert code == 1 and "2 chain heads for 3 chains at the checkpoint and 0 begun since" in output


def test_given_a_new_order_whose_trail_is_removed_then_a_resumed_run_finds_it(
    fake_gateway, settings
):
    verify()
    order = new_order(fake_gateway, price="10.50")
    with as_superuser():
        AuditEntry.objects.filter(target_id=order.number).delete()
        AuditChainHead.objects.filter(chain=f"order:{order.number}").delete()

    code, output = verify()

    assert code == 1
    assert f"order:{order.number}: the order exists but its audit trail is gone" in output


def test_given_a_forged_checkpoint_then_verify_refuses_it_and_full_starts_over():
    add_entries(2)
    verify()
    (later,) = add_entries(1)
    edit(later, details={"text": "rewritten"})
    # Move the checkpoint past the edited entry, so a resumed run would skip it.
    AuditCheckpoint.objects.update(seq=later.seq, entries=3, chains=3)

    code, output = verify()

    assert code == 2
    assert "checkpoint refused: the checkpoint's seal is invalid" in output
    assert "--full" in output
    code, output = full()
    assert code == 1 and f"BROKEN #{later.seq}" in output


def test_given_an_anchor_then_every_entry_is_checked_and_the_checkpoint_stays(tmp_path):
    add_entries(2)
    verify()
    mark = checkpoint()
    add_entries(1)
    anchor = tmp_path / "anchor.json"
    assert audit("anchor", "--output", str(anchor))[0] == 0

    code, output = verify(anchor)

    assert code == 0 and output.startswith("OK 3 entries (anchor #")
    assert checkpoint().seq == mark.seq


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_given_a_terminal_then_a_progress_line_else_none(capsys):
    add_entries(3)

    verify()
    assert "[" not in capsys.readouterr().out
    call_command("audit", "verify", "--full", stdout=Terminal())
    assert f"\r[{'#' * 30}] 3/3" in capsys.readouterr().out
