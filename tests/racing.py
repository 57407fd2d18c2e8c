"""Real concurrency for tests: `count` threads released together by a barrier.

Each thread closes its database connections when done (Django opens one per thread).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")


def race(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together; result (or raised error) i at i."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as error:  # returned: the test's thread decides
            results[i] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def race_ok(count: int, attempt: Callable[[int], T]) -> list[T]:
    """As `race`, failing the test if any thread raised."""
    results = race(count, attempt)
    errors = [result for result in results if isinstance(result, BaseException)]
    assert not errors, "\n".join(
        "".join(traceback.format_exception(error))
        + f"constraint: {getattr(error, 'constraint_name', None)}"
        for error in errors
    )
    return results
