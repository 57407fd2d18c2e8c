"""The gunicorn worker `shopkeeper serve` runs: an event loop reads requests, threads run Django.

gunicorn's threaded worker (gthread) hands a connection to a thread as soon as its first bytes
arrive and the thread then blocks until the request is complete, so eight clients that send half
a request and stall take all eight threads of 2 workers x 4 threads, and nobody else is answered.
Here gunicorn's tornado worker reads every request, headers and body, on an event loop, with a
header and a body timeout; only a complete request goes to Django, on a pool of `--threads`
threads. A stalled client costs a socket and a little memory, never a thread. gunicorn stays the
process manager (pre-fork, `--workers`, restarts, signals).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gunicorn.workers.gtornado import TornadoWorker
from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.wsgi import WSGIContainer

# Seconds a client may take to send a request's headers (a kept-alive connection waits as long
# for its next request), and then its body; a slower client is disconnected.
HEADER_TIMEOUT = 30.0
BODY_TIMEOUT = 60.0

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestsInFlight:
    """Counts requests inside Django, so that a stopping worker lets them finish."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def run(self, app: WSGIApp, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        """Run `app` and read and close its response in this same thread.

        Django closes the request's database connections when its response is closed; that must
        happen in the thread that opened them, not on the event loop. Header values lose their
        surrounding blanks (Django writes `Set-Cookie: " name=value"`; Tornado refuses that).
        """

        def start_stripped(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            return start_response(status, [(k, v.strip()) for k, v in headers], *exc_info)

        with self._lock:
            self.count += 1
        try:
            response = app(environ, start_stripped)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()
        finally:
            with self._lock:
                self.count -= 1


class UnreadBody(httputil.HTTPMessageDelegate):
    """Hands Django a request whose body is too large, or of unknown length, without its body.

    A Content-Length over SHOPKEEPER_MAX_BODY_BYTES, or a chunked body (which Django never reads
    under WSGI), is not read at all: the event loop is told there is no body, Django sees the
    declared length and answers 413 (shopkeeper.request_guard) or the view answers the empty
    body, and the connection is closed after that answer, since the unread bytes are still on it.
    """

    def __init__(self, inner: httputil.HTTPMessageDelegate, connection: Any, limit: int) -> None:
        self.inner, self.connection, self.limit = inner, connection, limit

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Any:
        if self._unreadable(headers):
            seen = httputil.HTTPHeaders(headers)
            seen.pop("Transfer-Encoding", None)
            headers.pop("Content-Length", None)
            headers.pop("Transfer-Encoding", None)
            # Tornado has no public switch for "close after this answer"; this is its own flag.
            self.connection._disconnect_on_finish = True
            return self.inner.headers_received(start_line, seen)
        return self.inner.headers_received(start_line, headers)

    def _unreadable(self, headers: httputil.HTTPHeaders) -> bool:
        if "chunked" in headers.get("Transfer-Encoding", "").lower():
            return True
        try:
            return int(headers.get("Content-Length", "0")) > self.limit
        except ValueError:
            return False  # Tornado itself refuses a malformed length with 400

    def data_received(self, chunk: bytes) -> Any:
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        self.inner.finish()

    def on_connection_close(self) -> None:
        self.inner.on_connection_close()


class BodyLimitServer(HTTPServer):
    """Tornado's HTTP server, reading no body over the application's limit (UnreadBody)."""

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        from django.conf import settings

        limit = int(settings.SHOPKEEPER_MAX_BODY_BYTES)
        return UnreadBody(super().start_request(server_conn, request_conn), request_conn, limit)


class BufferingWorker(TornadoWorker):
    """gunicorn's tornado worker with Django on a thread pool and request timeouts."""

    def load_wsgi(self) -> None:
        super().load_wsgi()
        django_app: WSGIApp = self.wsgi  # type: ignore[has-type]
        self.in_flight = RequestsInFlight()
        pool = ThreadPoolExecutor(self.cfg.threads, thread_name_prefix="shopkeeper-request")

        def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            return self.in_flight.run(django_app, environ, start_response)

        self.wsgi = WSGIContainer(application, executor=pool)

    def run(self) -> None:
        self.ioloop = IOLoop.current()
        self.alive, self.stop_deadline = True, 0.0
        from django.conf import settings

        self.server = BodyLimitServer(
            self.wsgi,
            no_keep_alive=self.cfg.keepalive <= 0,
            idle_connection_timeout=HEADER_TIMEOUT,
            body_timeout=BODY_TIMEOUT,
            # Larger bodies are never read (BodyLimitServer); this is Tornado's own backstop.
            max_body_size=int(settings.SHOPKEEPER_MAX_BODY_BYTES) + 1,
        )
        for listener in self.sockets:
            listener.setblocking(False)
            self.server.add_socket(listener)
        PeriodicCallback(self.tick, 500).start()
        self.ioloop.start()

    def tick(self) -> None:
        """Tell the arbiter we live; once told to stop, stop accepting and drain Django."""
        if self.alive:
            self.notify()
            self.alive = self.is_parent_alive()
            return
        if not self.stop_deadline:
            self.server.stop()
            self.stop_deadline = time.monotonic() + self.cfg.graceful_timeout
        if self.in_flight.count == 0 or time.monotonic() > self.stop_deadline:
            self.ioloop.stop()

    def is_parent_alive(self) -> bool:
        if self.ppid != os.getppid():
            self.log.info("Parent changed, shutting down: %s", self)
            return False
        return True
