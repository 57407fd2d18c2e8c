"""A progress line for long commands on a terminal, and none elsewhere (cron mail, pipes, logs).

`reconcile` and `audit verify` draw it only when their output is a terminal; what they print
otherwise (the report) is the same either way.
"""

from __future__ import annotations

from typing import TextIO

WIDTH = 30


def bar(done: int, total: int, width: int = WIDTH) -> str:
    """`[#####     ] 12/40`: filled in proportion to what is done."""
    filled = width if total <= 0 else min(width, done * width // total)
    return f"[{'#' * filled}{' ' * (width - filled)}] {done}/{total}"


class TerminalProgress:
    """Redraws one line in place on `stream`: a bar (`progress(done, total)`) or a count of
    work whose end is not known yet (`progress.note("listing Stripe: 1200 objects")`)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._width = 0  # of the line last drawn, so a shorter one wipes it

    def __call__(self, done: int, total: int) -> None:
        self.note(bar(done, total))

    def note(self, text: str) -> None:
        self._stream.write(f"\r{text}{' ' * max(self._width - len(text), 0)}")
        self._stream.flush()
        self._width = len(text)

    def finish(self) -> None:
        """Clear the line so the report starts on a clean one."""
        if self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0
