"""Failpoints: named places where a test makes the process fail on purpose.

A crash between "Stripe made the refund" and "we committed it" cannot be produced from outside
the process at the right instant, so the code names that instant (`hit("refund.after_stripe")`)
and a test switches it on. They are off unless `SHOPKEEPER_FAILPOINTS` names them (e.g.
`refund.after_stripe=kill`), which settings refuse in production; off, `hit` is one dict lookup.

Actions: `kill` ends the process with SIGKILL (no cleanup, no commit: a power cut); `raise`
raises `FailpointTriggered`, for tests that stay in one process; `hang` holds the thread there
(at most HANG_SECONDS, then raises), so a test can SIGKILL the process at that point from outside
(a worker killed mid-job: tests/scale/).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Mapping

from django.conf import settings

logger = logging.getLogger(__name__)


class FailpointTriggered(RuntimeError):
    """Raised by a failpoint set to `raise`."""


def _kill(name: str) -> None:
    logger.warning("Failpoint %s: killing process %s", name, os.getpid())
    logging.shutdown()  # flush the line above: nothing runs after SIGKILL
    os.kill(os.getpid(), signal.SIGKILL)


def _raise(name: str) -> None:
    raise FailpointTriggered(f"failpoint {name}")


HANG_SECONDS = 120.0


def _hang(name: str) -> None:
    logger.warning("Failpoint %s: holding process %s", name, os.getpid())
    for handler in logging.getLogger().handlers:
        handler.flush()
    time.sleep(HANG_SECONDS)
    raise FailpointTriggered(f"failpoint {name} held for {HANG_SECONDS:g} s")


ACTIONS: dict[str, Callable[[str], None]] = {"kill": _kill, "raise": _raise, "hang": _hang}


def parse(spec: str) -> dict[str, str]:
    """`"a=kill,b=raise"` → `{"a": "kill", "b": "raise"}`; an unknown action is refused."""
    points: dict[str, str] = {}
    for item in spec.split(","):
        name, _, action = (part.strip() for part in item.partition("="))
        if not name:
            continue
        if action not in ACTIONS:
            raise ValueError(f"failpoint {name}: action must be one of {sorted(ACTIONS)}")
        points[name] = action
    return points


def hit(name: str) -> None:
    """Fail here if a test switched failpoint `name` on; otherwise do nothing."""
    points: Mapping[str, str] = getattr(settings, "SHOPKEEPER_FAILPOINTS", None) or {}
    action = points.get(name)
    if action is not None:
        ACTIONS[action](name)
