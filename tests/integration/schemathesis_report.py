"""What a failing schemathesis case was, in full: enough to replay it by hand.

The method, the path as sent, the query, the headers (Authorization left out: the run's token
must not reach a log or a CI page), the cookies, the body, and the answer's status, headers
and body.
"""

from __future__ import annotations

import json
from typing import Any

LIMIT = 4000  # characters of a body shown


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= LIMIT else f"{text[:LIMIT]}… ({len(text)} characters)"


def _without_authorization(headers: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(headers or {}).items() if k.lower() != "authorization"}


def describe(case: Any, response: Any) -> str:
    body = getattr(case, "body", None)
    answer = bytes(getattr(response, "content", b"") or b"").decode("utf-8", "replace")
    return "\n".join(
        [
            f"{case.method} {case.formatted_path}",
            f"  query: {_shown(case.query)}",
            f"  headers (Authorization left out): {_shown(_without_authorization(case.headers))}",
            f"  cookies: {_shown(case.cookies)}",
            f"  media type: {case.media_type}",
            f"  body: {_shown(body) if type(body).__name__ != 'NotSet' else '(none)'}",
            f"  answer: {response.status_code}",
            f"  answer headers: {_shown(_without_authorization(response.headers))}",
            f"  answer body: {answer[:LIMIT]}",
        ]
    )
