"""`shopkeeper audit verify [--full] [--anchor FILE]` and `shopkeeper audit anchor [--output FILE]`.

verify: exit 0 with "OK n entries" when every keyed chain holds (and, with an anchor, every
entry the anchor signed is still there); otherwise each problem is listed and the exit status
is 1; an anchor file that cannot be read or whose signature fails is exit 2, and so is a
checkpoint whose seal fails. It resumes from the checkpoint its last sound run left (only what
came after is checked, docs/audit.md); --full (and --anchor) checks every entry.
anchor: prints (or writes) the signed cut of the log as JSON, for keeping off-site; exit 1 when
the log is broken (nothing is signed), 3 when writers kept it busy for 30 s (try again).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shopkeeper.audit.checkpoint import CheckpointRefused
from shopkeeper.audit.verification import (
    AnchorUnreadable,
    LogBroken,
    LogBusy,
    Verdict,
    make_anchor,
    verify_audit_log,
)
from shopkeeper.progress import TerminalProgress


class Command(BaseCommand):
    help = "Audit log tools: `verify` checks the keyed chains, `anchor` signs the log's head."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True)
        verify = subcommands.add_parser("verify", help="check every entry against its chain")
        verify.add_argument("--anchor", help="an anchor file: also prove nothing it signed is gone")
        verify.add_argument(
            "--full",
            action="store_true",
            help="check every entry, not only those after the last checkpoint",
        )
        anchor = subcommands.add_parser("anchor", help="print the signed head, to keep off-site")
        anchor.add_argument("--output", help="write the anchor to this file instead of stdout")

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        if subcommand == "verify":
            self.verify(options.get("anchor"), full=options.get("full", False))
        else:
            self.anchor(options.get("output"))

    def verify(self, anchor_path: str | None, *, full: bool) -> None:
        progress = TerminalProgress(sys.stdout) if self.stdout.isatty() else None
        try:
            anchor = _read_anchor(anchor_path) if anchor_path else None
            verdict = verify_audit_log(anchor, full=full, progress=progress)
        except AnchorUnreadable as error:
            raise CommandError(f"anchor {anchor_path}: {error}", returncode=2) from None
        except CheckpointRefused as error:
            raise CommandError(f"checkpoint refused: {error}", returncode=2) from None
        finally:
            if progress is not None:
                progress.finish()
        count, problems = verdict.count, verdict.problems
        if not problems:
            against = (
                f" (anchor #{anchor['seq']} of {anchor['created_at']} holds)" if anchor else ""
            )
            self.stdout.write(f"OK {count} entries{against}{_resumed(verdict)}")
            return
        for problem in problems:
            where = f"#{problem.seq}" if problem.seq is not None else "log"
            self.stdout.write(f"BROKEN {where}: {problem.problem}")
        raise CommandError(
            f"audit log verification failed: {len(problems)} problem(s) in {count} entries",
            returncode=1,
        )

    def anchor(self, output: str | None) -> None:
        try:
            anchor = make_anchor()
        except LogBroken as error:
            raise CommandError(f"{error}; run `shopkeeper audit verify`", returncode=1) from None
        except LogBusy as error:
            raise CommandError(f"no anchor written: {error}", returncode=3) from None
        text = json.dumps(anchor, indent=2, sort_keys=True) + "\n"
        if output:
            Path(output).write_text(text)
            self.stdout.write(f"anchor #{anchor['seq']} ({anchor['entries']} entries) -> {output}")
        else:
            self.stdout.write(text, ending="")


def _resumed(verdict: Verdict) -> str:
    """What a resumed run did not re-check, said on its OK line."""
    if verdict.resumed_from is None:
        return ""
    cut = verdict.resumed_from.cut
    return (
        f" after checkpoint #{cut.seq} of {verdict.resumed_from.verified_at.isoformat()} "
        f"({cut.entries} entries at or below it were verified then; --full checks them again)"
    )


def _read_anchor(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise AnchorUnreadable(f"cannot be read ({error.__class__.__name__})") from None
