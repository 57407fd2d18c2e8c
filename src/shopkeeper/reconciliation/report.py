"""What a reconciliation run found and did, for people (text) and programs (JSON). Pure Python.

The exit code says what remains: 0 nothing (no differences, or all fixed), 1 differences a
person must look at (or `--fix` would record), 2 Stripe could not be asked about everything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shopkeeper.reconciliation.facts import Difference, Fix

EXIT_CLEAN = 0
EXIT_DIFFERENCES = 1
EXIT_UNREACHABLE = 2


@dataclass(frozen=True, slots=True)
class Finding:
    difference: Difference
    fixed: bool = False


@dataclass
class Report:
    fix: bool = False
    since: str = ""
    order_number: str = ""
    checked: int = 0  # PaymentIntents compared
    skipped: int = 0  # PaymentIntents at Stripe that belong to no order of ours
    in_flight: int = 0  # pending refunds left alone: their request may still be under way
    stripe_requests: int = 0  # requests made to Stripe
    findings: list[Finding] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # what Stripe could not be asked

    def found(
        self, differences: list[Difference], remaining: list[Difference] | None = None
    ) -> None:
        """Record a PaymentIntent's differences; after fixes, those no longer found are fixed.

        A difference the fixes turned into another (an in-doubt refund whose settlement shows
        an amount mismatch) is reported as what remains.
        """
        if remaining is None:
            self.findings.extend(Finding(difference) for difference in differences)
            return
        left = {difference.identity for difference in remaining}
        self.findings.extend(
            Finding(difference, fixed=difference.identity not in left) for difference in differences
        )
        before = {difference.identity for difference in differences}
        self.findings.extend(
            Finding(difference) for difference in remaining if difference.identity not in before
        )

    @property
    def remaining(self) -> list[Difference]:
        return [finding.difference for finding in self.findings if not finding.fixed]

    @property
    def fixed(self) -> list[Difference]:
        return [finding.difference for finding in self.findings if finding.fixed]

    @property
    def exit_code(self) -> int:
        if self.unreachable:
            return EXIT_UNREACHABLE
        return EXIT_DIFFERENCES if self.remaining else EXIT_CLEAN

    def as_json(self) -> dict[str, Any]:
        return {
            "fix": self.fix,
            "since": self.since or None,
            "order": self.order_number or None,
            "checked": self.checked,
            "skipped": self.skipped,
            "in_flight_refunds": self.in_flight,
            "stripe_requests": self.stripe_requests,
            "differences": [_finding_json(finding) for finding in self.findings],
            "fixed": len(self.fixed),
            "remaining": len(self.remaining),
            "unreachable": list(self.unreachable),
            "exit_code": self.exit_code,
        }

    def as_text(self) -> str:
        lines = [self._headline()]
        for finding in self.findings:
            lines.append(_finding_line(finding, fixing=self.fix))
        for problem in self.unreachable:
            lines.append(f"  not checked: {problem}")
        if self.in_flight:
            lines.append(
                f"  {self.in_flight} pending refund(s) left alone: sent moments ago, "
                "their request may still be under way"
            )
        if self.remaining and not self.fix and any(d.fix != Fix.NONE for d in self.remaining):
            lines.append("Run again with --fix to record what Stripe proves.")
        return "\n".join(lines) + "\n"

    def _headline(self) -> str:
        scope = f" of order {self.order_number}" if self.order_number else ""
        scope += f" created since {self.since}" if self.since else ""
        counts = Counter(finding.fixed for finding in self.findings)
        summary = f"{len(self.findings)} difference(s)"
        if self.fix:
            summary += f", {counts[True]} fixed, {counts[False]} remaining"
        skipped = f" ({self.skipped} not ours skipped)" if self.skipped else ""
        return f"Checked {self.checked} PaymentIntent(s){scope} against Stripe{skipped}: {summary}."


def _finding_json(finding: Finding) -> dict[str, Any]:
    difference = finding.difference
    return {
        "kind": difference.kind,
        "description": difference.description,
        "order": difference.order_number,
        "payment_intent": difference.intent_id,
        "subject": difference.subject,
        "stripe_id": difference.stripe_id or None,
        "refund_id": difference.refund_id,
        "ours": difference.ours,
        "stripe": difference.stripe,
        "fix": difference.fix,
        "fixed": finding.fixed,
    }


def _finding_line(finding: Finding, *, fixing: bool) -> str:
    difference = finding.difference
    outcome = outcome_of(fixed=finding.fixed, fix=difference.fix, fixing=fixing)
    about = f" [{difference.subject}]" if difference.subject else ""
    return (
        f"  {difference.order_number or '?'} {difference.intent_id}{about}: "
        f"{difference.description}. Ours: {difference.ours}; Stripe: {difference.stripe}. "
        f"({outcome})"
    )


def outcome_of(*, fixed: bool, fix: str, fixing: bool) -> str:
    """What became of a difference: fixed, left to a person, or what `--fix` would do."""
    if fixed:
        return "fixed"
    if fix == Fix.NONE:
        return "needs a person"
    return "not fixed" if fixing else f"--fix: {fix}"
