"""A Stripe stand-in on loopback that records every request and answers canned Stripe JSON.

Not an emulator: it keeps no state. Each route answers what the test queued for it (or a
default object of the right kind), so a test can assert exactly what our client sent: method,
path, form fields (decoded), `Idempotency-Key`, `Stripe-Version`, and how many times.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    form: dict[str, str]  # POST body or GET query, decoded: {"metadata[order_number]": "SK-1"}
    headers: dict[str, str]  # lower-case names

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def stripe_version(self) -> str | None:
        return self.headers.get("stripe-version")


@dataclass
class Answer:
    body: Mapping[str, Any]
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


def intent(intent_id: str = "pi_1", **fields: Any) -> dict[str, Any]:
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": "requires_payment_method",
        "amount": 2500,
        "amount_received": 0,
        "amount_capturable": 0,
        "currency": "usd",
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_x",
        "metadata": {"order_number": "SK-1"},
        "latest_charge": None,
        "created": 1_700_000_000,
        **fields,
    }


def refund(refund_id: str = "re_1", **fields: Any) -> dict[str, Any]:
    return {
        "id": refund_id,
        "object": "refund",
        "status": "succeeded",
        "amount": 500,
        "currency": "usd",
        "payment_intent": "pi_1",
        "charge": "ch_1",
        "metadata": {},
        "created": 1_700_000_100,
        **fields,
    }


def charge(charge_id: str = "ch_1", **fields: Any) -> dict[str, Any]:
    return {
        "id": charge_id,
        "object": "charge",
        "status": "succeeded",
        "amount": 2500,
        "amount_captured": 2500,
        "amount_refunded": 0,
        "captured": True,
        "currency": "usd",
        "payment_intent": "pi_1",
        "created": 1_700_000_050,
        **fields,
    }


def dispute(dispute_id: str = "dp_1", **fields: Any) -> dict[str, Any]:
    return {
        "id": dispute_id,
        "object": "dispute",
        "status": "needs_response",
        "amount": 2500,
        "currency": "usd",
        "charge": "ch_1",
        "payment_intent": "pi_1",
        "reason": "fraudulent",
        "created": 1_700_000_200,
        **fields,
    }


def page(path: str, *objects: Mapping[str, Any], has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "url": path, "has_more": has_more, "data": list(objects)}


def _default(method: str, path: str) -> Mapping[str, Any]:
    parts = path.strip("/").split("/")  # ["v1", "payment_intents", "pi_1", "confirm"]
    kind = parts[1] if len(parts) > 1 else ""
    if method == "GET" and len(parts) == 2:
        return page(path)
    if kind == "payment_intents":
        return intent(parts[2] if len(parts) > 2 else "pi_1")
    if kind == "refunds":
        return refund(parts[2] if len(parts) > 2 else "re_1")
    return {"error": {"type": "invalid_request_error", "message": f"no route {path}"}}


class StripeRecorder:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._answers: dict[tuple[str, str], list[Answer]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, method: str, path: str, *answers: Answer | Mapping[str, Any]) -> None:
        """Queue answers for `method path` (the last one repeats)."""
        queued = [a if isinstance(a, Answer) else Answer(a) for a in answers]
        self._answers.setdefault((method, path), []).extend(queued)

    def only(self) -> Recorded:
        (request,) = self.requests
        return request

    def _reply(self, method: str, path: str) -> Answer:
        with self._lock:
            queued = self._answers.get((method, path), [])
            if len(queued) > 1:
                return queued.pop(0)
            if queued:
                return queued[0]
        body = _default(method, path)
        return Answer(body, status=404 if "error" in body else 200)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else split.query
                recorded = Recorded(
                    method=self.command,
                    path=split.path,
                    form=dict(parse_qsl(body, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                with recorder._lock:
                    recorder.requests.append(recorded)
                answer = recorder._reply(self.command, split.path)
                data = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

        return Handler

    @contextmanager
    def running(self) -> Iterator[StripeRecorder]:
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)
