"""A real `shopkeeper serve` (gunicorn) process on the test's own database, for crash tests.

The process shares the test database (pytest-django's PostgreSQL test database), so what the
test wrote and committed is what the server sees, and the other way round.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from django.db import connection

from tests.conftest import free_port


def shared_database_url() -> str:
    """The database this test runs on, as a DATABASE_URL for another process."""
    db: dict[str, Any] = connection.settings_dict
    user = urllib.parse.quote(str(db.get("USER") or ""))
    password = urllib.parse.quote(str(db.get("PASSWORD") or ""))
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host, port = str(db.get("HOST") or "127.0.0.1"), db.get("PORT") or 5432
    if host.startswith("/"):  # a unix socket's directory (the embedded PostgreSQL's)
        return f"postgres://{credentials}{urllib.parse.quote(host, safe='')}:{port}/{db['NAME']}"
    return f"postgres://{credentials}{host}:{port}/{db['NAME']}"


def shopkeeper_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The caller's environment without its Shopkeeper/Stripe settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SHOPKEEPER_"))}
    env["DATABASE_URL"] = shared_database_url()
    env["SHOPKEEPER_DATA_DIR"] = str(tmp_path)
    env.update(settings)
    return env


def run_shopkeeper(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shopkeeper", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ServerProcess:
    """`shopkeeper serve` (one worker unless told) on a free port; stopped (SIGTERM) on exit."""

    def __init__(self, env: dict[str, str], log: Path, *serve_options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log
        self._log = log.open("ab")
        command = [sys.executable, "-m", "shopkeeper", "serve", "--host", "127.0.0.1"]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), "--workers", "1", *serve_options],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> ServerProcess:
        self.wait_until_up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until_up(self, timeout: float = 60) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not come up:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self._log_path.read_text(errors="replace")
