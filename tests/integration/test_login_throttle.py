"""The login throttle cannot be turned against staff: failures count per account and address
and, separately, per address; an attacker's failures do not lock the owner out of another
address; spraying many e-mails from one address is stopped; behind a proxy the client address
comes from X-Forwarded-For only when SHOPKEEPER_PROXY_COUNT says how many proxies to trust."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from shopkeeper.accounts.models import User
from shopkeeper.audit.models import AuditEntry
from tests.factories import staff

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"
PROXY = "10.9.9.9"


@pytest.fixture
def owner(settings) -> User:
    settings.SHOPKEEPER_LOGIN_MAX_FAILURES = 5
    settings.SHOPKEEPER_LOGIN_MAX_FAILURES_PER_ADDRESS = 20
    settings.SHOPKEEPER_LOGIN_THROTTLE_SECONDS = 900
    settings.SHOPKEEPER_PROXY_COUNT = 0
    return staff("owner", password=PASSWORD)


def sign_in(email: str, password: str, ip: str = "203.0.113.1", **headers: str):
    """(status, the form's error text, signed in?)"""
    client = Client(REMOTE_ADDR=ip, **headers)
    response = client.post("/admin/login/", {"username": email, "password": password})
    text = re.sub(r"\s+", " ", response.content.decode())
    errors = " ".join(re.findall(r'class="[^"]*error[^"]*"[^>]*>(.*?)<', text))
    return response.status_code, errors, "_auth_user_id" in client.session


def behind_proxy(client_ip: str) -> dict[str, str]:
    return {"ip": PROXY, "HTTP_X_FORWARDED_FOR": client_ip}


def test_given_an_attackers_five_failures_on_the_owner_then_the_owner_signs_in_elsewhere(owner):
    for _ in range(5):
        sign_in(owner.email, "guess", ip="198.51.100.7")

    assert sign_in(owner.email, PASSWORD, ip="203.0.113.1")[2]  # the owner's own address
    locked = sign_in(owner.email, PASSWORD, ip="198.51.100.7")  # the attacker's: throttled
    assert not locked[2] and "Too many failed sign-in attempts" in locked[1]


def test_given_forty_failures_sprayed_over_ten_emails_from_one_address_then_it_is_blocked(owner):
    emails = [f"user{n}@shop.example" for n in range(9)] + [owner.email]
    answers = [sign_in(email, "guess", ip="198.51.100.7") for _ in range(4) for email in emails]

    throttled = [n for n, (_, errors, _) in enumerate(answers) if "Too many" in errors]
    assert throttled and throttled[0] == 19  # the 20th failure from the address starts the lock
    assert throttled == list(range(19, 40))
    assert not sign_in(owner.email, PASSWORD, ip="198.51.100.7")[2]  # blocked from there
    assert sign_in(owner.email, PASSWORD, ip="203.0.113.1")[2]  # not from anywhere else
    entry = AuditEntry.objects.get(action="auth.login_throttled")
    assert entry.details["ip"] == "198.51.100.7" and entry.ip == "198.51.100.7"


def test_given_a_locked_address_then_the_answer_is_the_same_whether_the_email_exists(owner):
    for n in range(20):
        sign_in(f"nobody{n}@shop.example", "guess", ip="198.51.100.7")

    known = sign_in(owner.email, PASSWORD, ip="198.51.100.7")
    unknown = sign_in("nobody@shop.example", PASSWORD, ip="198.51.100.7")

    assert known == unknown and "Too many failed sign-in attempts" in known[1]
    wrong = sign_in(owner.email, "guess", ip="203.0.113.5")
    missing = sign_in("nobody@shop.example", "guess", ip="203.0.113.6")
    assert wrong == missing  # and before any lock: nothing tells which e-mail exists


def test_given_no_proxy_count_then_x_forwarded_for_is_ignored(owner):
    """A client cannot pick its own address: the header is anyone's to write."""
    for n in range(5):
        sign_in(owner.email, "guess", ip="198.51.100.7", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert not sign_in(owner.email, PASSWORD, ip="198.51.100.7", HTTP_X_FORWARDED_FOR="192.0.2.99")[
        2
    ]


def test_given_a_proxy_and_no_proxy_count_then_every_client_shares_the_proxys_address(owner):
    for _ in range(5):
        sign_in(owner.email, "guess", **behind_proxy("198.51.100.7"))
    assert not sign_in(owner.email, PASSWORD, **behind_proxy("203.0.113.1"))[2]


def test_given_a_proxy_and_proxy_count_one_then_clients_are_told_apart(owner, settings):
    settings.SHOPKEEPER_PROXY_COUNT = 1
    for _ in range(5):
        sign_in(owner.email, "guess", **behind_proxy("198.51.100.7"))

    assert sign_in(owner.email, PASSWORD, **behind_proxy("203.0.113.1"))[2]
    assert not sign_in(owner.email, PASSWORD, **behind_proxy("198.51.100.7"))[2]
    # A client's own X-Forwarded-For comes first; the proxy appends the address it saw.
    spoofed = behind_proxy("203.0.113.1, 198.51.100.7")
    assert not sign_in(owner.email, PASSWORD, **spoofed)[2]
    entry = AuditEntry.objects.get(action="auth.login_throttled")
    assert entry.details["ip"] == "198.51.100.7" and entry.ip == "198.51.100.7"
