"""The event-loop worker's hand-over to Django (shopkeeper/server/worker.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shopkeeper.server.worker import RequestsInFlight


class DjangoLikeResponse:
    """An iterable response whose close() must run where it was made (Django's DB cleanup)."""

    def __init__(self, in_flight: RequestsInFlight) -> None:
        self.in_flight = in_flight
        self.closed_in: int | None = None
        self.count_while_iterating: int | None = None

    def __iter__(self) -> Any:
        self.count_while_iterating = self.in_flight.count
        yield b"hello, "
        yield b"world"

    def close(self) -> None:
        self.closed_in = threading.get_ident()


def test_given_a_response_when_run_then_read_and_closed_in_its_thread_with_headers_trimmed():
    in_flight, seen = RequestsInFlight(), {}
    response = DjangoLikeResponse(in_flight)

    def app(environ: dict[str, Any], start_response: Any) -> DjangoLikeResponse:
        seen["thread"] = threading.get_ident()
        start_response("200 OK", [("Set-Cookie", " csrftoken=abc; Path=/"), ("X-A", "b ")])
        return response

    def start_response(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> None:
        seen["headers"] = headers

    with ThreadPoolExecutor(1) as pool:
        body = pool.submit(in_flight.run, app, {}, start_response).result()

    assert body == [b"hello, world"]
    assert response.closed_in == seen["thread"]
    assert seen["headers"] == [("Set-Cookie", "csrftoken=abc; Path=/"), ("X-A", "b")]
    assert (response.count_while_iterating, in_flight.count) == (1, 0)


def test_given_the_app_raises_when_run_then_it_no_longer_counts_as_in_flight():
    in_flight = RequestsInFlight()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        in_flight.run(app, {}, lambda *args: None)

    assert in_flight.count == 0
