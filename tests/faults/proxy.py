"""A Stripe fault-injection proxy for tests: an HTTP proxy to localstripe that misbehaves on cue.

It also plays Stripe's idempotency layer, which localstripe lacks (there the same
`Idempotency-Key` twice makes two refunds). As Stripe documents it:
- the first response for a key is stored and replayed for every later request with that key
  (with `Idempotent-Replayed: true`);
- the same key with other parameters is refused: 400 `idempotency_error`;
- a request while another with the same key is still running gets 409 and nothing is stored;
- nothing is stored for a request the API never began to execute (an injected 500 or 429).

Faults (`inject`), each for the next `times` requests matching a method and path prefix:
- ERROR_500: answer 500 `api_error` without forwarding (Stripe's front failed; nothing done);
- RATE_LIMIT: answer 429 without forwarding (with `headers`, e.g. Retry-After, if given);
- DROP_RESPONSE: forward (the refund is made), then close the connection with no answer;
- DELAY: forward, then hold the answer `delay` seconds, past the client's timeout;
- STALL: Stripe itself is frozen (as localstripe was, stopped for 35 s): the request is held,
  not forwarded, until `resume()`; then every held request is forwarded, each one as it came
  (the client gave up on all of them long ago). They pass by the idempotency layer, as they
  would reach a frozen localstripe, which ignores keys: each one held becomes a refund.
Connection refused has no request to match: `refusing()` closes the listening socket, so
connections to the port are refused, and opens it again on the same port afterwards.

Bounded: on 127.0.0.1 only, at most `max_connections` at once, upstream calls time out, held
answers end when the proxy closes, and the proxy closes itself after `lifetime` seconds.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The faults tier's Stripe client timeout (seconds); the tier's `proxy` holds a delayed answer
# 2.5 times as long, past it.
CLIENT_TIMEOUT = 1.0


class Fault(StrEnum):
    ERROR_500 = "error_500"
    RATE_LIMIT = "rate_limit"
    DROP_RESPONSE = "drop_response"
    DELAY = "delay"
    STALL = "stall"


@dataclass
class Rule:
    fault: Fault
    times: int
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and path.startswith(self.path)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Exchange:
    """One request the proxy saw, and what became of it."""

    method: str
    path: str
    key: str | None
    outcome: str  # forwarded, replayed, key_reused, key_in_use, or not_forwarded
    fault: Fault | None = None
    at: float = field(default_factory=time.monotonic)  # when it was logged


def stripe_error(status: int, type_: str, message: str, code: str = "") -> Reply:
    error = {"type": type_, "message": message, **({"code": code} if code else {})}
    return Reply(status, json.dumps({"error": error}).encode())


class StripeFaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        delay: float = 2.0,
        lifetime: float = 120.0,
        max_connections: int = 32,
        port: int = 0,
    ) -> None:
        parsed = urllib.parse.urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.delay = delay
        self.exchanges: list[Exchange] = []
        self._rules: list[Rule] = []
        self._stored: dict[str, tuple[bytes, Reply]] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._resumed = threading.Event()
        self._held = 0
        self._released = threading.Condition(self._lock)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._server: ThreadingHTTPServer | None = None
        self._port = port  # 0: any free one
        self._listen()
        self.url = f"http://127.0.0.1:{self._port}"
        self._timer = threading.Timer(lifetime, self.close)
        self._timer.daemon = True
        self._timer.start()

    # --- control ----------------------------------------------------------------------
    def __enter__(self) -> StripeFaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def inject(
        self,
        fault: Fault,
        *,
        times: int = 1,
        method: str = "POST",
        path: str = "/v1/refunds",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        with self._lock:
            self._rules.append(Rule(Fault(fault), times, method, path, headers))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def resume(self, *, timeout: float = 30.0) -> int:
        """Stripe wakes up: forward every held request; return how many there were, once all
        of them were answered."""
        with self._lock:
            self._rules = [rule for rule in self._rules if rule.fault is not Fault.STALL]
            held = self._held
        self._resumed.set()
        with self._released:
            if not self._released.wait_for(lambda: self._held == 0, timeout=timeout):
                raise TimeoutError(f"{self._held} held request(s) still unanswered")
        return held

    @contextmanager
    def refusing(self) -> Iterator[None]:
        """No listener on the port meanwhile: every connection attempt is refused."""
        self._stop_listening()
        try:
            yield
        finally:
            if not self._closed.is_set():
                self._listen()

    def close(self) -> None:
        self._closed.set()  # ends held answers at once
        self._timer.cancel()
        self._stop_listening()

    def count(
        self,
        outcome: str | None = None,
        *,
        fault: Fault | None = None,
        method: str = "POST",
        path: str = "/v1/refunds",
    ) -> int:
        """Requests seen for `method` and `path` (a prefix), with that outcome and fault."""
        return sum(
            1
            for exchange in list(self.exchanges)
            if exchange.method == method
            and exchange.path.startswith(path)
            and outcome in (None, exchange.outcome)
            and fault in (None, exchange.fault)
        )

    # --- the listener -----------------------------------------------------------------
    def _listen(self) -> None:
        server = _Server(("127.0.0.1", self._port), _handler_for(self))
        server.slots = self._slots
        self._port = int(server.server_address[1])
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    # --- what a request gets ----------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply | None:
        """The reply to send, or None to drop the connection without one."""
        key = headers.get("Idempotency-Key") if method == "POST" else None
        rule = self._take_rule(method, path)
        fault = rule.fault if rule is not None else None
        if fault is Fault.STALL:
            return self._stalled(method, path, key, headers, body)
        if fault in (Fault.ERROR_500, Fault.RATE_LIMIT):
            self._log(Exchange(method, path, key, "not_forwarded", fault))
            refusal = _refusal(fault)
            return Reply(refusal.status, refusal.body, rule.headers if rule else ())
        reply, outcome = self._execute(method, path, key, headers, body)
        self._log(Exchange(method, path, key, outcome, fault))
        if fault is Fault.DROP_RESPONSE:
            return None
        if fault is Fault.DELAY:
            self._closed.wait(self.delay)
        return reply

    def _stalled(
        self, method: str, path: str, key: str | None, headers: dict[str, str], body: bytes
    ) -> Reply | None:
        with self._lock:
            self._held += 1
        try:
            while not (self._resumed.is_set() or self._closed.is_set()):
                self._resumed.wait(0.05)
            if self._closed.is_set():
                self._log(Exchange(method, path, key, "not_forwarded", Fault.STALL))
                return None
            reply = self._forward(method, path, headers, body)
            self._log(Exchange(method, path, key, "forwarded", Fault.STALL))
            return reply
        finally:
            with self._released:
                self._held -= 1
                self._released.notify_all()

    def _take_rule(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    return rule
        return None

    def _execute(
        self, method: str, path: str, key: str | None, headers: dict[str, str], body: bytes
    ) -> tuple[Reply, str]:
        """Stripe's idempotency layer around localstripe."""
        if key is None:
            return self._forward(method, path, headers, body), "forwarded"
        fingerprint = f"{method} {path}\n".encode() + body
        with self._lock:
            if key in self._stored:
                first, reply = self._stored[key]
                if first != fingerprint:
                    return _key_reused(key), "key_reused"
                return _replayed(reply), "replayed"
            if key in self._running:
                return _key_in_use(), "key_in_use"
            self._running.add(key)
        try:
            reply = self._forward(method, path, headers, body)
            with self._lock:
                self._stored[key] = (fingerprint, reply)
        finally:
            with self._lock:
                self._running.discard(key)
        return reply, "forwarded"

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        connection = http.client.HTTPConnection(*self.upstream, timeout=10)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            content_type = response.getheader("Content-Type", "application/json")
            return Reply(response.status, response.read(), (("Content-Type", content_type),))
        finally:
            connection.close()

    def _log(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)


def _refusal(fault: Fault) -> Reply:
    if fault is Fault.RATE_LIMIT:
        return stripe_error(
            429,
            "invalid_request_error",
            "Too many requests hit the API too quickly (fault proxy).",
            code="rate_limit",
        )
    return stripe_error(500, "api_error", "An unknown error occurred (fault proxy).")


def _replayed(reply: Reply) -> Reply:
    return Reply(reply.status, reply.body, (*reply.headers, ("Idempotent-Replayed", "true")))


def _key_reused(key: str) -> Reply:
    return stripe_error(
        400,
        "idempotency_error",
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
    )


def _key_in_use() -> Reply:
    return stripe_error(
        409,
        "invalid_request_error",
        "There is currently another in-progress request using this Idempotency Key. "
        "Please try again later.",
        code="idempotency_key_in_use",
    )


class _Server(ThreadingHTTPServer):
    """One thread per connection, at most `slots` at once; a connection over that is closed."""

    daemon_threads = True
    block_on_close = False
    slots: threading.BoundedSemaphore

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(timeout=5):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that gave up on a held or dropped answer is the point of a fault."""


def _handler_for(proxy: StripeFaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so no kept-alive connection slips past a fault.
        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() not in ("host", "connection", "content-length")
            }
            reply = proxy.handle(self.command, self.path, headers, body)
            if reply is None:  # the answer is lost on the way back
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            if not any(name == "Content-Type" for name, _ in reply.headers):
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_DELETE = _relay

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
