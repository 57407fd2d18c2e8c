"""Login throttling that an attacker cannot turn against staff.

Two keys are counted, each on its own: an account at one address (an e-mail and an IP), and an
address (an IP, whatever e-mails it tries). After `SHOPKEEPER_LOGIN_MAX_FAILURES` failures of
one e-mail from one address, or `SHOPKEEPER_LOGIN_MAX_FAILURES_PER_ADDRESS` failures of any
e-mails from one address, within `SHOPKEEPER_LOGIN_THROTTLE_SECONDS`, attempts with that key are
refused without checking the password until the oldest counted failure leaves the window. So an
attacker's guesses lock the attacker's address, never the owner signing in from another one,
and spraying many e-mails from one address is stopped. Whether an e-mail exists plays no part.
Failures are rows in the database, so every server process counts the same ones; a successful
sign-in clears its account-and-address count. `locked_until` is the pure rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from shopkeeper.accounts.models import LoginFailure


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)


def policies() -> tuple[ThrottlePolicy, ThrottlePolicy]:
    """(per account at an address, per address)."""
    window = timedelta(seconds=int(getattr(settings, "SHOPKEEPER_LOGIN_THROTTLE_SECONDS", 900)))
    account = int(getattr(settings, "SHOPKEEPER_LOGIN_MAX_FAILURES", 5))
    address = int(getattr(settings, "SHOPKEEPER_LOGIN_MAX_FAILURES_PER_ADDRESS", 20))
    return ThrottlePolicy(account, window), ThrottlePolicy(address, window)


def locked_until(
    failures: Sequence[datetime], *, now: datetime, rule: ThrottlePolicy
) -> datetime | None:
    """When the lock on a key ends, given its failure times; None when it is not locked."""
    recent = sorted(t for t in failures if t > now - rule.window)
    if len(recent) < rule.max_failures:
        return None
    # Unlocked once enough of the recent failures have aged out of the window.
    return recent[len(recent) - rule.max_failures] + rule.window


def login_key(email: str) -> str:
    return (email or "").strip().lower()


def _failures(ip: str | None, since: datetime, email: str | None = None) -> list[datetime]:
    rows = LoginFailure.objects.filter(ip=ip, created_at__gt=since)
    if email is not None:
        rows = rows.filter(email=login_key(email))
    return list(rows.values_list("created_at", flat=True))


def _lock_ends(email: str, ip: str | None, now: datetime) -> list[datetime | None]:
    account, address = policies()
    return [
        locked_until(_failures(ip, now - account.window, email), now=now, rule=account),
        locked_until(_failures(ip, now - address.window), now=now, rule=address),
    ]


def login_locked_until(*, email: str, ip: str | None) -> datetime | None:
    return max((end for end in _lock_ends(email, ip, timezone.now()) if end), default=None)


def record_login_failure(*, email: str, ip: str | None) -> datetime | None:
    """Count one failure; returns when the lock ends if this failure started one."""
    now = timezone.now()
    window = policies()[0].window
    LoginFailure.objects.filter(created_at__lte=now - window).delete()  # no longer counted
    before = _lock_ends(email, ip, now)
    LoginFailure.objects.create(email=login_key(email), ip=ip, created_at=now)
    after = _lock_ends(email, ip, now)
    started = [end for was, end in zip(before, after, strict=True) if was is None and end]
    if not started:
        return None
    _audit_lock(email, ip, by_address=after[0] is None)
    return max(started)


def _audit_lock(email: str, ip: str | None, *, by_address: bool) -> None:
    from shopkeeper.audit.services import record

    record(
        action="auth.login_throttled",
        target_type="address" if by_address else "user",
        target_id=(ip or "") if by_address else login_key(email)[:64],
        target_label=(ip or "") if by_address else login_key(email),
        actor_label="anonymous",
        details={"email": login_key(email), "ip": ip, "key": "address" if by_address else "user"},
    )


def clear_login_failures(*, email: str, ip: str | None) -> None:
    LoginFailure.objects.filter(email=login_key(email), ip=ip).delete()
