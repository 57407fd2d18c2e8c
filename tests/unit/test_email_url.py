"""SHOPKEEPER_EMAIL_URL read into Django's e-mail settings; a bad one refused, password hidden."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shopkeeper.notifications.email_url import (
    CONSOLE_BACKEND,
    FILE_BACKEND,
    SMTP_BACKEND,
    BadEmailUrl,
    EmailConfig,
    parse_email_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://user:pass@mail.example.com:587?tls=1",
            EmailConfig(
                backend=SMTP_BACKEND,
                host="mail.example.com",
                port=587,
                username="user",
                password="pass",
                use_tls=True,
            ),
        ),
        ("smtp://localhost", EmailConfig(backend=SMTP_BACKEND, host="localhost", port=25)),
        (
            "smtps://u%40shop.example:p%40ss%3Aw0rd@smtp.example.com",
            EmailConfig(
                backend=SMTP_BACKEND,
                host="smtp.example.com",
                port=465,
                username="u@shop.example",
                password="p@ss:w0rd",
                use_ssl=True,
            ),
        ),
        (
            "smtp://relay:2525?ssl=1&timeout=2.5",
            EmailConfig(backend=SMTP_BACKEND, host="relay", port=2525, use_ssl=True, timeout=2.5),
        ),
        ("console:", EmailConfig(backend=CONSOLE_BACKEND)),
        ("file:///var/mail/shop", EmailConfig(backend=FILE_BACKEND, file_path="/var/mail/shop")),
        (
            "  SMTP://localhost:1025  ",
            EmailConfig(backend=SMTP_BACKEND, host="localhost", port=1025),
        ),
    ],
)
def test_given_a_url_then_the_settings_it_means(url, expected):
    assert parse_email_url(url) == expected


def test_given_a_config_then_the_django_settings():
    config = parse_email_url("smtp://u:p@h:587?tls=1")
    assert config.django_settings() == {
        "EMAIL_BACKEND": SMTP_BACKEND,
        "EMAIL_HOST": "h",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "u",
        "EMAIL_HOST_PASSWORD": "p",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 10.0,
        "EMAIL_FILE_PATH": "",
    }


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://user:s3cret@host", "scheme must be"),
        ("", "scheme must be"),
        ("smtp://user:s3cret@:25", "names no host"),
        ("smtp://user:s3cret@host:25x", "port is not a number"),
        ("smtp://user:s3cret@host/inbox", "has no path"),
        ("smtp://user:s3cret@host?tls=yes", "tls must be 0 or 1"),
        ("smtp://user:s3cret@host?starttls=1", "unknown option starttls"),
        ("smtps://user:s3cret@host?tls=1", "not both"),
        ("smtp://user:s3cret@host?timeout=0", "timeout must be"),
        ("smtp://user:s3cret@host?timeout=soon", "timeout must be"),
        ("smtp://user:s3cret@host?tls", "query cannot be read"),
        ("file://relative/dir", "absolute path"),
        ("file:///", "absolute path"),
        # An @ the user forgot to encode: still nothing of the password shown.
        ("smtp://user:s3c@ret@host:x", "port is not a number"),
    ],
)
def test_given_a_bad_url_then_refused_with_a_reason_and_never_the_password(url, says):
    with pytest.raises(BadEmailUrl, match=says) as refused:
        parse_email_url(url)
    assert "s3c" not in str(refused.value)
    assert "SHOPKEEPER_EMAIL_URL" in str(refused.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "smtp://shop:s3cret@mail.example.com:587?tls=1",
            "smtp://shop@mail.example.com:587 (STARTTLS)",
        ),
        ("smtps://mail.example.com", "smtps://mail.example.com:465"),
        ("console:", "printed on the console"),
        ("file:///tmp/mail", "files in /tmp/mail"),
    ],
)
def test_given_a_config_then_described_without_its_password(url, shown):
    assert parse_email_url(url).describe() == shown


def test_given_a_bad_url_in_the_environment_then_django_refuses_to_start_in_one_line():
    env = {
        **os.environ,
        "SHOPKEEPER_EMAIL_URL": "smtp://shop:s3cret@mail.example.com:xx",
        "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
    }
    done = subprocess.run(
        [sys.executable, "-c", "import shopkeeper.settings"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured: SHOPKEEPER_EMAIL_URL" in done.stderr
    assert "port is not a number" in done.stderr
    assert "s3cret" not in done.stderr


def test_given_a_config_then_its_repr_never_holds_the_password():
    config = parse_email_url("smtp://shop:s3cret@mail.example.com")

    assert config.password == "s3cret"
    assert "s3cret" not in repr(config) and "s3cret" not in config.describe()
