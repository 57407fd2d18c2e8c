"""One Shopkeeper installation of several processes, as in production behind a load balancer.

Three `shopkeeper serve` processes on their own ports and two `shopkeeper worker` processes, all
on one PostgreSQL database that this module creates (and migrates with `shopkeeper migrate`)
beside pytest-django's: the processes are not the test's, so what they see must be committed.
Their Stripe is localstripe behind a `CountingProxy`, which plays Stripe's idempotency layer
(localstripe ignores `Idempotency-Key`) and notes the wall-clock second each request arrived.

Every process runs in a session (process group) of its own and is stopped with its group: at
the fixture's end, and by `atexit` if the test run dies first.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.conftest import free_port
from tests.faults.proxy import Reply, StripeFaultProxy

ROOT = Path(__file__).resolve().parents[2]
SERVERS = 3
WORKERS = ("a", "b")
# The tier's Stripe limit (requests a second, the account's and each endpoint's): 500 refunds
# take about 12 s at it.
STRIPE_LIMIT = 50
STALLED_AFTER = 3  # seconds without a heartbeat: a worker is dead and its jobs are retried
_STARTED: list[subprocess.Popen[bytes]] = []


def _stop_group(process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM) -> None:
    """Signal the process's whole group (gunicorn's workers too); SIGKILL it after 20 s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # a child that outlived its parent


@atexit.register
def _stop_everything_left() -> None:
    for process in _STARTED:
        with contextlib.suppress(Exception):
            _stop_group(process, sig=signal.SIGKILL)


def start(command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _STARTED.append(process)
    return process


class Ports:
    """Ports for the tier's listeners: from SHOPKEEPER_SCALE_BASE_PORT on when it is set (a
    shared machine gives each user a range), else any free ones."""

    def __init__(self) -> None:
        base = os.environ.get("SHOPKEEPER_SCALE_BASE_PORT", "")
        self._next = int(base) if base else 0

    def take(self) -> int:
        if not self._next:
            return free_port()
        port, self._next = self._next, self._next + 1
        return port


class CountingProxy(StripeFaultProxy):
    """The fault proxy with no faults, counting requests per wall-clock second of arrival."""

    def __init__(self, upstream: str, *, port: int) -> None:
        self.arrivals: list[tuple[int, str, str]] = []  # (second, method, path)
        self._arrivals_lock = threading.Lock()
        super().__init__(upstream, lifetime=900, max_connections=96, port=port)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply | None:
        with self._arrivals_lock:
            self.arrivals.append((int(time.time()), method, path))
        return super().handle(method, path, headers, body)

    def busiest_second(self, *, since: float, path: str = "") -> int:
        """The most requests (to `path`, a prefix) that arrived in one wall-clock second."""
        with self._arrivals_lock:
            seconds = Counter(
                second
                for second, _, seen in self.arrivals
                if second >= int(since) and seen.startswith(path)
            )
        return max(seconds.values(), default=0)


def database_url(settings_dict: dict[str, Any], name: str) -> str:
    user = urllib.parse.quote(str(settings_dict.get("USER") or ""))
    password = urllib.parse.quote(str(settings_dict.get("PASSWORD") or ""))
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = str(settings_dict.get("HOST") or "127.0.0.1")
    port = settings_dict.get("PORT") or 5432
    if host.startswith("/"):  # a unix socket's directory (the embedded PostgreSQL's)
        host = urllib.parse.quote(host, safe="")
    return f"postgres://{credentials}{host}:{port}/{name}"


@contextlib.contextmanager
def scale_database(settings_dict: dict[str, Any]) -> Iterator[str]:
    """A database of the tier's own, named after pytest-django's test database; its URL."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    name = f"test_{settings_dict['NAME']}{f'_{worker}' if worker else ''}_scale"
    admin = database_url(settings_dict, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(settings_dict, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def shopkeeper(*args: str) -> list[str]:
    return [sys.executable, "-m", "shopkeeper", *args]


def run(command: list[str], *, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def wait_for(what: str, predicate: Callable[[], object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str = "",
    key: str = "",
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """One HTTP request on a connection of its own; the status and the JSON answer."""
    parsed = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    if key:
        sent["Idempotency-Key"] = key
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        content = response.read()
        try:
            return response.status, json.loads(content or b"null")
        except ValueError:
            return response.status, content.decode(errors="replace")
    finally:
        connection.close()


def answers(base: str) -> bool:
    parsed = urllib.parse.urlsplit(base)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=0.5):
            pass
        return call(base, "GET", "/healthz")[0] == 200
    except OSError:
        return False


@dataclass
class Installation:
    database: str
    env: dict[str, str]
    logs: Path
    proxy: CountingProxy
    ports: Ports
    servers: list[str] = field(default_factory=list)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    seeded: dict[str, Any] = field(default_factory=dict)
    _servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _began: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        """A line in phases.log: what the tier's wall time went to."""
        with (self.logs / "phases.log").open("a") as phases:
            phases.write(f"{time.monotonic() - self._began:6.1f} s  {what}\n")

    @property
    def token(self) -> str:
        return str(self.seeded["token"])

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def scalar(self, sql: str, *params: Any) -> Any:
        rows = self.query(sql, *params)
        return rows[0][0] if rows else None

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_servers(self) -> None:
        for index in range(SERVERS):
            port = self.ports.take()
            command = shopkeeper("serve", "--host", "127.0.0.1", "--port", str(port))
            command += ["--workers", "1", "--threads", "8"]
            log = self.logs / f"server{index}.log"
            self._servers.append(start(command, env=self.env, log=log))
            self.servers.append(f"http://127.0.0.1:{port}")

    def wait_for_servers(self) -> None:
        for index, url in enumerate(self.servers):
            process = self._servers[index]
            wait_for(
                f"server {url}:\n{self.log(f'server{index}')}",
                lambda: process.poll() is not None or answers(url),  # noqa: B023
            )
            assert process.poll() is None, self.log(f"server{index}")

    def start_worker(self, name: str, **settings: str) -> subprocess.Popen[bytes]:
        command = shopkeeper("worker", "--concurrency", "2", "--name", name)
        command += ["--stalled-after", str(STALLED_AFTER)]
        log = self.logs / f"worker-{name}.log"
        worker = start(command, env={**self.env, **settings}, log=log)
        self.workers[name] = worker
        return worker

    def wait_for_worker(self, name: str) -> None:
        worker = self.workers[name]
        wait_for(
            f"worker {name}:\n{self.log(f'worker-{name}')}",
            lambda: worker.poll() is not None or "Shopkeeper worker:" in self.log(f"worker-{name}"),
        )
        assert worker.poll() is None, self.log(f"worker-{name}")

    def stop_worker(self, name: str, *, sig: int = signal.SIGTERM) -> None:
        _stop_group(self.workers.pop(name), sig=sig)

    def stop(self) -> None:
        for process in [*self.workers.values(), *self._servers]:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers.values(), *self._servers]:
            _stop_group(process)
        self.workers.clear()
        self._servers.clear()
