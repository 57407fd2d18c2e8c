"""Login throttling: too many failed sign-ins for one e-mail from one address locks it out.

After `SHOPKEEPER_LOGIN_MAX_FAILURES` failures within `SHOPKEEPER_LOGIN_THROTTLE_SECONDS`, further
attempts for that e-mail and IP are refused without checking the password, until the oldest
counted failure leaves the window. Failures are rows in the database, so every gunicorn worker
counts the same ones. A successful sign-in clears the count. `locked_until` is the pure rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from shopkeeper.accounts.models import LoginFailure


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)


def policy() -> ThrottlePolicy:
    return ThrottlePolicy(
        max_failures=int(getattr(settings, "SHOPKEEPER_LOGIN_MAX_FAILURES", 5)),
        window=timedelta(seconds=int(getattr(settings, "SHOPKEEPER_LOGIN_THROTTLE_SECONDS", 900))),
    )


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


def client_ip(request: HttpRequest | None) -> str | None:
    return (request.META.get("REMOTE_ADDR") or None) if request is not None else None


def _failures(email: str, ip: str | None, since: datetime) -> list[datetime]:
    rows = LoginFailure.objects.filter(email=login_key(email), ip=ip, created_at__gt=since)
    return list(rows.values_list("created_at", flat=True))


def login_locked_until(*, email: str, ip: str | None) -> datetime | None:
    rule, now = policy(), timezone.now()
    return locked_until(_failures(email, ip, now - rule.window), now=now, rule=rule)


def record_login_failure(*, email: str, ip: str | None) -> datetime | None:
    """Count one failure; returns when the lock ends if this failure started one."""
    rule, now = policy(), timezone.now()
    stale = LoginFailure.objects.filter(email=login_key(email), created_at__lte=now - rule.window)
    stale.delete()  # failures older than the window no longer count
    LoginFailure.objects.create(email=login_key(email), ip=ip, created_at=now)
    failures = _failures(email, ip, now - rule.window)
    if len(failures) != rule.max_failures:
        return None
    from shopkeeper.audit.services import record

    record(
        action="auth.login_throttled",
        target_type="user",
        target_id=login_key(email)[:64],
        target_label=login_key(email),
        actor_label="anonymous",
        details={"email": login_key(email), "ip": ip, "failures": len(failures)},
    )
    return locked_until(failures, now=now, rule=rule)


def clear_login_failures(*, email: str, ip: str | None) -> None:
    LoginFailure.objects.filter(email=login_key(email), ip=ip).delete()
