"""What /readyz, /metrics and `shopkeeper status` report, registered by the features that know.

Plain Python at the bottom of the layers, so that any package can register from its
`AppConfig.ready()`:
- a **check** says whether this server may take traffic (`/readyz` answers 503 when one fails;
  `shopkeeper status` exits 1): `register_check("worker", worker_heartbeat_is_fresh)`;
- a **count** is a number worth watching (printed by `shopkeeper status`, exported as the gauge
  `shopkeeper_<name>` on /metrics): `register_count("jobs_failed", "Jobs ...", count_failed)`;
- a **line** is news for a person, neither a check nor a number (printed by `shopkeeper status`
  only): `register_line("webhooks_sync", describe_last_sync)`.

A check returns a `Verdict`; one that raises is a failed check named by its exception's type
only (its message may hold a connection string). A count or a line that raises is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Count:
    name: str
    help: str
    read: Callable[[], float]


_checks: dict[str, Callable[[], Verdict]] = {}
_counts: dict[str, Count] = {}
_lines: dict[str, Callable[[], str]] = {}


def register_check(name: str, check: Callable[[], Verdict]) -> None:
    """Add (or replace, for the same name) a readiness check."""
    _checks[name] = check


def register_count(name: str, help: str, read: Callable[[], float]) -> None:
    """Add (or replace) a count; `name` in snake_case, e.g. `webhook_events_failed`."""
    _counts[name] = Count(name, help, read)


def register_line(name: str, read: Callable[[], str]) -> None:
    """Add (or replace) a line for `shopkeeper status`, e.g. when a periodic job last ran."""
    _lines[name] = read


def run_checks() -> list[CheckResult]:
    results = []
    for name, check in list(_checks.items()):
        try:
            verdict = check()
        except Exception as error:
            verdict = Verdict(False, f"check raised {type(error).__name__}")
        results.append(CheckResult(name, verdict.ok, verdict.detail))
    return results


def read_counts() -> dict[str, tuple[Count, float]]:
    values = {}
    for name, count in list(_counts.items()):
        try:
            values[name] = (count, float(count.read()))
        except Exception:
            continue
    return values


def read_lines() -> dict[str, str]:
    values = {}
    for name, read in list(_lines.items()):
        try:
            values[name] = read()
        except Exception:
            continue
    return values
