"""An HTTPS-terminating reverse proxy for tests, as nginx or a load balancer runs in production.

It accepts TLS on 127.0.0.1 with a self-signed certificate made by `openssl`, and forwards each
request over plain HTTP to the backend with the headers such a proxy adds: `X-Forwarded-Proto:
https` (overwriting whatever the client sent) and `X-Forwarded-For`. The `Host` header is passed
on unchanged. Loopback only (the backend sees it connect from 127.0.0.2, as from another host);
one request per connection upstream.
"""

from __future__ import annotations

import http.client
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The address the proxy connects to the backend from: loopback, but not 127.0.0.1, as a proxy on
# another machine (the server trusts nothing about 127.0.0.1 in particular).
UPSTREAM_FROM = "127.0.0.2"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for `localhost` and 127.0.0.1, and its key, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed")
    cert, key = directory / "proxy-cert.pem", directory / "proxy-key.pem"
    names = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *names, *files],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class _Forward(BaseHTTPRequestHandler):
    server: TLSProxy
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._forward()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers.pop("X-Forwarded-Proto", None)
        headers["X-Forwarded-Proto"] = "https"
        headers["X-Forwarded-For"] = self.client_address[0]
        upstream = http.client.HTTPConnection(
            "127.0.0.1", self.server.backend_port, timeout=30, source_address=(UPSTREAM_FROM, 0)
        )
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            content = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    def log_message(self, format: str, *args: object) -> None:
        pass


class TLSProxy(ThreadingHTTPServer):
    """`with TLSProxy(backend_port, cert, key) as proxy:` serves https://localhost:{proxy.port}."""

    daemon_threads = True

    def __init__(self, backend_port: int, cert: Path, key: Path, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Forward)
        self.backend_port = backend_port
        self.port = int(self.server_address[1])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> TLSProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
