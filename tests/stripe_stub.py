"""A counting stand-in for Stripe's API: answers every GET with a small object of the kind its
path names, and records when each request arrived (`time.monotonic()`), so a test or a
benchmark can count the requests in any one-second window. HTTP/1.0, one thread a connection,
on 127.0.0.1 only; `status` and `headers` make it answer something else (e.g. 429) instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CountingStripeStub:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, str]] = []
        self.status = 200
        self.headers: tuple[tuple[str, str], ...] = ()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def __enter__(self) -> CountingStripeStub:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.arrivals.append((time.monotonic(), method, path))

    def times(self, path_prefix: str = "") -> list[float]:
        with self._lock:
            return sorted(t for t, _, path in self.arrivals if path.startswith(path_prefix))


def busiest_second(times: Iterable[float]) -> int:
    """The most arrivals in any window [t, t + 1 s)."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def _object_for(path: str) -> dict[str, Any]:
    parts = path.split("?")[0].strip("/").split("/")
    kind = parts[1] if len(parts) > 1 else ""
    object_id = parts[2] if len(parts) > 2 else "x"
    if kind == "refunds":
        return {
            "id": object_id,
            "object": "refund",
            "status": "succeeded",
            "amount": 100,
            "currency": "usd",
            "payment_intent": "pi_1",
            "metadata": {},
            "created": 1,
        }
    return {
        "id": object_id,
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 100,
        "currency": "usd",
        "capture_method": "automatic",
        "metadata": {},
        "created": 1,
        "amount_received": 100,
        "amount_capturable": 0,
    }


def _handler_for(stub: CountingStripeStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            stub.record(self.command, self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if stub.status == 200:
                body = json.dumps(_object_for(self.path)).encode()
            else:
                error = {"type": "invalid_request_error", "code": "rate_limit", "message": "slow"}
                body = json.dumps({"error": error}).encode()
            self.send_response(stub.status)
            for name, value in stub.headers:
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
