#!/usr/bin/env python3
"""EverShop 2.2.1 as a live contender: install it with npm, run it against a localstripe.

    .venv/bin/python bench/contenders/evershop.py install      # npm install + build (~7 min)
    .venv/bin/python bench/contenders/evershop.py serve --stripe-url http://127.0.0.1:8420 \
        --port 3000                                             # until Ctrl-C

`install` puts EverShop 2.2.1 from the npm registry into var/bench/evershop/ (gitignored) with
a package.json of its own, writes its .env (PostgreSQL at 127.0.0.1:5432, database
`sk_evershop`, created if missing) and config/default.json (the stripe module on, test keys, the
webhook secret below), and builds its storefront and admin bundles (`evershop build`). Nothing of
EverShop is copied into this repository.

`serve` starts `evershop start` (which migrates the database) with STRIPE_API_BASE set and
NODE_OPTIONS=--import stripe_api_base.mjs: EverShop constructs its clients as
`new Stripe(secretKey)` with no host setting, and that hook hands it stripe-node built with the
SDK's own `host`/`port`/`protocol` options instead (see bench/contenders/evershop/). It then
creates the admin user (`evershop user:create`) and the product the bench orders, both idempotent.

The helpers below (`login`, `place_paid_order`, ...) are what bench/contenders/evershop_refund.py
uses to make paid orders through EverShop's own APIs:

  1. POST /api/carts {items, customer_email, customer_full_name}   (public checkout API)
  2. POST /api/carts/{cartId}/checkout {billingAddress, paymentMethod: "stripe", ...}
  3. the PaymentIntent, created and confirmed with pm_card_visa at localstripe directly with
     EverShop's own parameters (amount, currency, metadata {cart_id, order_id}). EverShop's
     POST /api/stripe/paymentIntents cannot be used offline: it sends
     `automatic_payment_methods`, which localstripe rejects ("Unexpected
     automatic_payment_methods"). Against real Stripe it would create the PaymentIntent and
     Stripe.js in the buyer's browser would confirm it.
  4. a signed `payment_intent.succeeded` event POSTed to EverShop's /api/stripe/webhook, as
     Stripe delivers it: EverShop's handler records the payment_transaction and marks the order
     `stripe_captured`, which is what its refund endpoint needs.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HOOK = Path(__file__).resolve().parent / "evershop" / "stripe_api_base.mjs"
INSTALL_DIR = ROOT / "var" / "bench" / "evershop"
VERSION = "2.2.1"

DB_HOST, DB_PORT, DB_USER, DB_NAME = "127.0.0.1", "5432", "postgres", "sk_evershop"
SECRET_KEY = "sk_test_evershop_bench"
WEBHOOK_SECRET = "whsec_evershop_bench"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@bench.example", "benchpass123"
SKU, PRICE = "BENCH-1", 20  # one virtual product: no shipping zone or method needed
BILLING = {
    "full_name": "Bench Buyer",
    "telephone": "5550100",
    "address_1": "1 Main St",
    "city": "Springfield",
    "country": "US",
    "province": "US-CA",
    "postcode": "90001",
}

# EverShop 2.2.1 imports concat-stream (modules/cms/services/CustomMemoryStorage.js) without
# declaring it; without it `evershop build` fails with ERR_MODULE_NOT_FOUND.
PACKAGE_JSON = {
    "name": "shopkeeper-bench-evershop",
    "private": True,
    "type": "module",
    "dependencies": {"@evershop/evershop": VERSION, "concat-stream": "^2.0.0"},
}
CONFIG = {
    "shop": {"language": "en", "timezone": "UTC", "currency": "USD"},
    "system": {
        "stripe": {
            "status": 1,
            "secretKey": SECRET_KEY,
            "publishableKey": "pk_test_evershop_bench",
            "endpointSecret": WEBHOOK_SECRET,
        }
    },
}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def evershop_cli(*args: str) -> list[str]:
    cli = INSTALL_DIR / "node_modules" / "@evershop" / "evershop" / "dist" / "bin" / "evershop.js"
    return ["node", str(cli), *args]


def database_url(name: str = DB_NAME) -> str:
    return f"postgres://{DB_USER}@{DB_HOST}:{DB_PORT}/{name}"


def ensure_database() -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as db:
        if not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
            db.execute(f'CREATE DATABASE "{DB_NAME}"')


def install(rebuild: bool = False) -> None:
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    (INSTALL_DIR / "package.json").write_text(json.dumps(PACKAGE_JSON, indent=2) + "\n")
    (INSTALL_DIR / ".env").write_text(
        f'DB_HOST="{DB_HOST}"\nDB_PORT="{DB_PORT}"\nDB_NAME="{DB_NAME}"\n'
        f'DB_USER="{DB_USER}"\nDB_PASSWORD=""\nDB_SSLMODE="disable"\n'
    )
    (INSTALL_DIR / "config").mkdir(exist_ok=True)
    (INSTALL_DIR / "config" / "default.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    for folder in ("media", "public"):
        (INSTALL_DIR / folder).mkdir(exist_ok=True)
    ensure_database()
    say(f"== npm install @evershop/evershop@{VERSION} into {INSTALL_DIR}")
    subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=INSTALL_DIR, check=True)
    built = INSTALL_DIR / ".evershop" / "build"
    if rebuild or not built.exists():
        say("== evershop build (webpack: a few minutes on 2 cores)")
        subprocess.run(evershop_cli("build"), cwd=INSTALL_DIR, check=True)


def server_env(stripe_url: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PORT=str(port),
        TRUST_PROXY_HOPS="1",
        STRIPE_API_BASE=stripe_url,
        NODE_OPTIONS=f"{env.get('NODE_OPTIONS', '')} --import {HOOK}".strip(),
        NODE_CONFIG_STRICT_MODE="0",
        SUPPRESS_NO_CONFIG_WARNING="1",
    )
    return env


def start(stripe_url: str, port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`evershop start` in a process group of its own (it forks its cron and event processes);
    stop it with `stop(process)`. Returns once it answers HTTP and its admin user and product
    exist."""
    if not (INSTALL_DIR / "node_modules").exists():
        raise SystemExit(f"EverShop is not installed: run {Path(__file__).name} install first")
    out = (log or INSTALL_DIR / "server.log").open("ab")
    process = subprocess.Popen(
        evershop_cli("start"),
        cwd=INSTALL_DIR,
        env=server_env(stripe_url, port),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, process)
    ensure_admin_user()
    ensure_product(url, login(url))
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"EverShop exited with {process.returncode}; see its log")
        try:
            Http(url).request("GET", "/")
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"EverShop did not answer at {url} within {timeout:.0f} s")


def ensure_admin_user() -> None:
    subprocess.run(
        evershop_cli(
            "user:create",
            "--name",
            "Bench Admin",
            "--email",
            ADMIN_EMAIL,
            "--password",
            ADMIN_PASSWORD,
        ),
        cwd=INSTALL_DIR,
        env={**os.environ, "NODE_CONFIG_STRICT_MODE": "0"},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# EverShop 2.2.1 limits each client IP to 120 /api requests a minute and 8 logins in 15 minutes,
# hard-coded (modules/base/services/rateLimit.js), by `request.ip`; with TRUST_PROXY_HOPS=1 (its
# default: one reverse proxy in front) that is the X-Forwarded-For address. Each request here
# says it comes from another shopper's address, as a proxy in front of a busy shop would. The
# limiter itself still runs on every request.
_forwarded_for = itertools.count(1)


def forwarded_for() -> str:
    n = next(_forwarded_for)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class Http:
    """One keep-alive connection to one server (not thread-safe: one per client thread)."""

    def __init__(self, url: str, cookie: str = "") -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.cookie = cookie
        self.connection: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            sent = {
                "Content-Type": "application/json",
                "X-Forwarded-For": forwarded_for(),
                **(headers or {}),
            }
            if self.cookie:
                sent["Cookie"] = self.cookie
            try:
                self.connection.request(method, path, body=body, headers=sent)
                response = self.connection.getresponse()
                data = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def post_json(
        self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Any:
        status, _, data = self.request("POST", path, json.dumps(body).encode(), headers)
        answer = json.loads(data) if data else {}
        if status != 200:
            raise RuntimeError(f"POST {path} answered {status}: {data[:300]!r}")
        return answer


def login(url: str) -> str:
    """The admin session cookie, as the admin UI's login form gets it (POST /admin/user/login)."""
    status, headers, data = Http(url).request(
        "POST",
        "/admin/user/login",
        json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).encode(),
    )
    if status != 200 or "set-cookie" not in headers:
        raise RuntimeError(f"admin login answered {status}: {data[:300]!r}")
    return headers["set-cookie"].split(";", 1)[0]


def ensure_product(url: str, cookie: str) -> None:
    import psycopg

    with psycopg.connect(database_url()) as db:
        if db.execute("SELECT 1 FROM product WHERE sku = %s", (SKU,)).fetchone():
            return
    Http(url, cookie).post_json(
        "/api/products",
        {
            "name": "Bench widget",
            "url_key": "bench-widget",
            "status": 1,
            "sku": SKU,
            "qty": 1_000_000,
            "manage_stock": 0,
            "stock_availability": 1,
            "price": PRICE,
            "group_id": 1,
            "visibility": 1,
            "no_shipping_required": 1,
        },
    )


@dataclass(frozen=True)
class PaidOrder:
    order_id: int  # what EverShop's refund endpoint takes
    uuid: str
    payment_intent: str
    amount: int  # in cents


def place_paid_order(shop: Http, stripe: Any, n: int) -> PaidOrder:
    """One order through EverShop's checkout API, paid at localstripe, the payment delivered to
    EverShop as Stripe's signed webhook. `stripe`: a stripe.StripeClient on that localstripe."""
    email = f"buyer{n}@bench.example"
    cart = shop.post_json(
        "/api/carts",
        {
            "items": [{"sku": SKU, "qty": 1}],
            "customer_email": email,
            "customer_full_name": "Bench Buyer",
        },
    )["data"]["cartId"]
    order = shop.post_json(
        f"/api/carts/{cart}/checkout",
        {
            "cart_id": cart,
            "customer": {"email": email, "fullName": "Bench Buyer"},
            "paymentMethod": "stripe",
            "billingAddress": BILLING,
        },
    )["data"]
    amount = round(float(order["grand_total"]) * 100)
    intent = stripe.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": order["currency"].lower(),
            "metadata": {"cart_id": cart, "order_id": order["uuid"]},
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    if intent.status != "succeeded":
        raise RuntimeError(f"PaymentIntent {intent.id} is {intent.status}")
    deliver_webhook(shop, "payment_intent.succeeded", intent.to_dict())
    return PaidOrder(int(order["order_id"]), order["uuid"], intent.id, amount)


def deliver_webhook(shop: Http, event_type: str, obj: dict[str, Any]) -> None:
    """POST an event to EverShop's /api/stripe/webhook signed the way Stripe signs it
    (Stripe-Signature: t=..., v1=HMAC-SHA256("{t}.{body}") with the endpoint secret)."""
    event = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": obj},
    }
    body = json.dumps(event).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(
        WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    status, _, data = shop.request(
        "POST", "/api/stripe/webhook", body, {"Stripe-Signature": f"t={stamp},v1={signature}"}
    )
    if status != 200:
        raise RuntimeError(f"EverShop refused the {event_type} webhook: {status} {data[:300]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    install_cmd = commands.add_parser("install", help="npm install, .env, config, database, build")
    install_cmd.add_argument("--rebuild", action="store_true", help="run `evershop build` again")
    serve_cmd = commands.add_parser("serve", help="run EverShop against a localstripe until Ctrl-C")
    serve_cmd.add_argument(
        "--stripe-url", required=True, help="the localstripe, e.g. http://127.0.0.1:8420"
    )
    serve_cmd.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("node and npm are needed (EverShop 2.2.1 wants Node.js 20 or later)")
    if args.command == "install":
        install(rebuild=args.rebuild)
        return
    process = start(args.stripe_url, args.port)
    print(
        json.dumps({"evershop": f"http://127.0.0.1:{args.port}", "stripe": args.stripe_url}),
        flush=True,
    )
    try:
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(process)


if __name__ == "__main__":
    main()
