"""Staff sign-in: Argon2 password hashes and the login throttle (per e-mail and IP, in the DB)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone

from shopkeeper.accounts.forms import ThrottledAuthenticationForm
from shopkeeper.accounts.models import LoginFailure, User
from shopkeeper.accounts.throttle import ThrottlePolicy, locked_until
from shopkeeper.audit.models import AuditEntry

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(settings):
    settings.SHOPKEEPER_LOGIN_MAX_FAILURES = 3
    settings.SHOPKEEPER_LOGIN_THROTTLE_SECONDS = 600
    return User.objects.create_user("staff@example.com", PASSWORD, role="support")


def sign_in(email: str, password: str, ip: str = "10.0.0.1") -> ThrottledAuthenticationForm:
    request = RequestFactory().post("/admin/login/", REMOTE_ADDR=ip)
    form = ThrottledAuthenticationForm(request, data={"username": email, "password": password})
    form.is_valid()
    return form


def error_codes(form: ThrottledAuthenticationForm) -> list[str]:
    return [error.code for error in form.non_field_errors().as_data()]


def test_passwords_are_hashed_with_argon2(production_password_hashers):
    staff = User.objects.create_user("argon@example.com", PASSWORD, role="support")
    assert staff.password.startswith("argon2")
    assert sign_in(staff.email, PASSWORD).is_valid()


def test_given_right_password_then_signed_in():
    User.objects.create_user("ada@example.com", PASSWORD, role="viewer")
    form = sign_in("ada@example.com", PASSWORD)
    assert form.is_valid() and form.get_user().email == "ada@example.com"


def test_given_too_many_failures_then_even_the_right_password_is_refused(staff):
    for _ in range(2):
        assert error_codes(sign_in(staff.email, "wrong")) == ["invalid_login"]
    third = sign_in(staff.email, "wrong")
    assert error_codes(third) == ["throttled"]  # the failure that starts the lock says so

    refused = sign_in(staff.email, PASSWORD)

    assert not refused.is_valid()
    assert error_codes(refused) == ["throttled"]
    assert "Try again in 10 minute(s)" in refused.non_field_errors()[0]
    assert LoginFailure.objects.count() == 3  # refused attempts are not even tried
    locked = AuditEntry.objects.get(action="auth.login_throttled")
    assert locked.details["email"] == staff.email and locked.details["ip"] == "10.0.0.1"


def test_given_locked_email_then_the_same_email_from_another_address_still_signs_in(staff):
    for _ in range(3):
        sign_in(staff.email, "wrong", ip="10.0.0.1")
    assert sign_in(staff.email, PASSWORD, ip="10.0.0.2").is_valid()


def test_given_locked_key_then_case_of_the_email_does_not_bypass_it(staff):
    for _ in range(3):
        sign_in(staff.email, "wrong")
    assert error_codes(sign_in("STAFF@example.com", PASSWORD)) == ["throttled"]


def test_given_failures_older_than_the_window_then_sign_in_works_again(staff):
    for _ in range(3):
        sign_in(staff.email, "wrong")
    LoginFailure.objects.update(created_at=timezone.now() - timedelta(seconds=601))

    assert sign_in(staff.email, PASSWORD).is_valid()


def test_given_a_success_then_earlier_failures_no_longer_count(staff):
    for _ in range(2):
        sign_in(staff.email, "wrong")
    assert sign_in(staff.email, PASSWORD).is_valid()
    assert not LoginFailure.objects.exists()
    for _ in range(2):
        sign_in(staff.email, "wrong")
    assert sign_in(staff.email, PASSWORD).is_valid()


def test_locked_until_rule_is_a_sliding_window():
    now = timezone.now()
    rule = ThrottlePolicy(max_failures=3, window=timedelta(minutes=10))
    times = [now - timedelta(minutes=m) for m in (9, 5, 1)]
    assert locked_until(times, now=now, rule=rule) == times[0] + rule.window
    assert locked_until(times[1:], now=now, rule=rule) is None
    old = [now - timedelta(minutes=11), *times[1:]]
    assert locked_until(old, now=now, rule=rule) is None


def test_given_the_login_page_then_the_throttle_applies_through_http(client, staff):
    """The back office's /admin/login/ uses ThrottledAuthenticationForm."""
    for _ in range(3):
        client.post("/admin/login/", {"username": staff.email, "password": "wrong"})
    response = client.post("/admin/login/", {"username": staff.email, "password": PASSWORD})
    assert response.status_code == 200 and b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session
