"""Run localstripe (an offline Stripe emulator) without its shared /tmp pickle.

`python -m shopkeeper.demo.localstripe_server --port 8420` starts it with an in-memory store, so
instances stay apart and fast (the test fixtures). `--store FILE` keeps the store in that file
instead, so the offline demo's PaymentIntents outlive a restart just as its database does.
localstripe does not keep webhook registrations: register them again after every start.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


def _use_store(path: Path | None) -> None:
    """Replace localstripe's fixed /tmp/localstripe.pickle by `path`, or by nothing at all."""
    from localstripe import resources

    if path is None:
        resources.Store.dump_to_disk = lambda self: None
        resources.Store.try_load_from_disk = lambda self: None
        return

    def dump_to_disk(store: Any) -> None:
        # Written aside then renamed, so a crash mid-write never leaves a torn store.
        partial = path.with_suffix(path.suffix + ".partial")
        with partial.open("wb") as handle:
            pickle.dump(dict(store), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, path)

    def try_load_from_disk(store: Any) -> None:
        if path.exists():
            with path.open("rb") as handle:
                saved = pickle.load(handle)  # our own file, written by dump_to_disk above
            store.clear()
            store.update(saved)

    resources.Store.dump_to_disk = dump_to_disk
    resources.Store.try_load_from_disk = try_load_from_disk


def serve(port: int, host: str = "127.0.0.1", store: Path | None = None) -> None:
    _use_store(store)
    from aiohttp import web
    from localstripe.resources import store as localstripe_store
    from localstripe.server import app

    localstripe_store.try_load_from_disk()
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
    parser.add_argument(
        "--store", type=Path, default=None, help="keep the store in this file (default: memory)"
    )
    args = parser.parse_args()
    print(json.dumps({"localstripe": f"http://{args.host}:{args.port}"}), flush=True)
    serve(args.port, args.host, args.store)


if __name__ == "__main__":
    main()
