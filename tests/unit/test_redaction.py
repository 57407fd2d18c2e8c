"""Log masking: our API tokens, every Authorization value, Basic credentials and secrets in a
query string never reach a log line; the masked form keeps enough to tell what was there."""

from __future__ import annotations

import base64
import logging

import pytest

from shopkeeper.redaction import MaskSecretsFilter, mask_secrets

TOKEN = "shk_" + "Qm9vbXNoYWthbGFrYS1zZWNyZXQtdG9rZW4tdmFsdWU"
BASIC = base64.b64encode(b"owner@shop.example:hunter2-secret").decode()

LEAKS = {
    "ninja's unexpected auth": (f"Unexpected auth - 'Basic {TOKEN}'", [TOKEN]),
    "an unknown scheme": ("Unexpected auth - 'Weird s3cr3t-value'", ["s3cr3t-value"]),
    "a bearer token": (f"Authorization: Bearer {TOKEN}", [TOKEN]),
    "basic credentials": (f"Authorization: Basic {BASIC}", [BASIC]),
    "lower-case scheme": (f"authorization=basic {BASIC}", [BASIC]),
    "a META dump": ("{'HTTP_AUTHORIZATION': 'Token abc123secret'}", ["abc123secret"]),
    "a token in a query": (f'"GET /api/admin/orders?token={TOKEN}&q=1 HTTP/1.1" 401', [TOKEN]),
    "a key in a query": ("GET /x?api_key=k3y-value&password=pw-value", ["k3y-value", "pw-value"]),
    "credentials in a URL": ("fetching https://user:pa55word@example.com/", ["pa55word"]),
    "a bare token": (f"created token {TOKEN} for owner", [TOKEN]),
    "a stripe key": ("using sk_test_51abcdefghijklmnop", ["sk_test_51abcdefghijklmnop"]),
}


@pytest.mark.parametrize("case", LEAKS.keys())
def test_given_a_secret_in_a_log_line_when_masked_then_it_is_gone(case):
    line, secrets = LEAKS[case]
    masked = mask_secrets(line)
    for secret in secrets:
        assert secret not in masked, masked
    assert "****" in masked


def test_given_an_ordinary_line_then_masking_leaves_it_alone():
    line = '127.0.0.1 - [01/Dec/2026] "GET /api/admin/orders?status=paid HTTP/1.1" 200 512'
    assert mask_secrets(line) == line


def test_given_a_record_with_a_secret_in_its_args_and_its_exception_then_both_are_masked():
    try:
        raise ValueError(f"bad header Bearer {TOKEN}")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "auth %s", (f"Basic {BASIC}",), sys.exc_info()
        )
    assert MaskSecretsFilter().filter(record)
    text = logging.Formatter().format(record)
    assert TOKEN not in text and BASIC not in text
    assert "auth Basic ****" in text
