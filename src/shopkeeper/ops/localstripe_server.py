"""Run localstripe (an offline Stripe emulator) without its on-disk pickle.

`python -m shopkeeper.ops.localstripe_server --port 8420` starts it with an in-memory store,
so instances stay apart and fast. Used by the offline demo and the test fixtures.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request


def _disable_persistence() -> None:
    from localstripe import resources

    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]


def serve(port: int, host: str = "127.0.0.1") -> None:
    _disable_persistence()
    from aiohttp import web
    from localstripe.server import app

    web.run_app(app, host=host, port=port, print=None, access_log=None)


def wait_until_up(api_base: str, timeout: float = 20.0) -> None:
    parsed = urllib.parse.urlparse(api_base)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((parsed.hostname, parsed.port or 80), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"localstripe did not start at {api_base}")


def register_webhook(api_base: str, *, url: str, secret: str, name: str = "shopkeeper") -> None:
    """Point localstripe's webhook deliveries at Shopkeeper, signed with `secret`."""
    body = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
    request = urllib.request.Request(
        f"{api_base}/_config/webhooks/{name}", data=body, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def flush(api_base: str) -> None:
    request = urllib.request.Request(f"{api_base}/_config/data", method="DELETE")
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    print(json.dumps({"localstripe": f"http://{args.host}:{args.port}"}), flush=True)
    serve(args.port, args.host)


if __name__ == "__main__":
    main()
