"""What Chromium reports as Content-Security-Policy violations on a page.

Chromium logs every blocked script, style, frame or connection as a console error naming the
"Content Security Policy"; the browser tests collect those and require none.
"""

from __future__ import annotations

from typing import Any


def watch_csp_violations(page: Any) -> list[str]:
    """A list that fills with the page's CSP violation messages from now on."""
    violations: list[str] = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", on_console)
    return violations
