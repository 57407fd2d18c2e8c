"""A progress bar for terminals, and none elsewhere (cron mail, pipes, logs)."""

from __future__ import annotations

from typing import TextIO

WIDTH = 30


def bar(done: int, total: int, width: int = WIDTH) -> str:
    """`[#####     ] 12/40`: filled in proportion to what is done."""
    filled = width if total <= 0 else min(width, done * width // total)
    return f"[{'#' * filled}{' ' * (width - filled)}] {done}/{total}"


class TerminalProgress:
    """Redraws one line in place on `stream` (a terminal: stderr, so stdout stays the report)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        self._stream.write(f"\r{bar(done, total)}")
        self._stream.flush()
        self._drawn = True

    def finish(self) -> None:
        """Clear the bar so the report starts on a clean line."""
        if self._drawn:
            self._stream.write("\r" + " " * (WIDTH + 24) + "\r")
            self._stream.flush()
