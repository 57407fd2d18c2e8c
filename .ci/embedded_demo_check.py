#!/usr/bin/env python3
"""CI step: `dev.py run` without DATABASE_URL serves the demo on the embedded PostgreSQL.

Starts `python3 dev.py run` on free ports with its data in a temporary directory, waits until `/`
and `/admin/login/` answer 200, then sends SIGINT to its process group as Ctrl-C would, and checks
that it exits 0, that the embedded server shut down cleanly (no postmaster.pid left) and that no
process of the run is left (postgres, its supervisor, localstripe, gunicorn). Standard library
only; needs the virtualenv `dev.py` creates (run it after `dev.py test`, or give it time).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_SECONDS = float(os.environ.get("EMBEDDED_DEMO_DEADLINE", "90"))
PAGES = ("/", "/admin/login/")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_of(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def processes_mentioning(text: str) -> list[str]:
    """`pid: command line` of every process whose command line contains `text`, or whose
    parent's does (postgres's own children name only themselves)."""
    found: dict[int, str] = {}
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            parents[int(entry.name)] = int(
                (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            )
        except (OSError, ValueError, IndexError):
            continue
        if text in cmdline:
            found[int(entry.name)] = cmdline
    for pid, parent in parents.items():
        if parent in found and pid not in found:
            found[pid] = f"child of {parent}"
    return [f"{pid}: {line}" for pid, line in sorted(found.items())]


class NotServed(Exception):
    """The demo did not answer in time, or its process exited first."""


def wait_for_pages(site: str, run: subprocess.Popen[bytes], deadline: float) -> None:
    for page in PAGES:
        while (status := status_of(site + page)) != 200:
            if run.poll() is not None:
                raise NotServed(f"dev.py run exited with {run.returncode} before {page} answered")
            if time.monotonic() > deadline:
                raise NotServed(f"{page} did not answer 200 in time (last: {status})")
            time.sleep(0.5)
        print(f"  {page} answered 200", flush=True)


def check(data: Path, log: Path) -> list[str]:
    """Run the demo on `data`; return what went wrong (empty when all is well)."""
    port, stripe_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["SHOPKEEPER_DATA_DIR"] = str(data)
    command = [
        sys.executable,
        "dev.py",
        "run",
        "--port",
        str(port),
        "--stripe-port",
        str(stripe_port),
    ]
    began = time.monotonic()
    with log.open("wb") as output:
        run = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    problems: list[str] = []
    try:
        wait_for_pages(f"http://127.0.0.1:{port}", run, began + DEADLINE_SECONDS)
        print(f"  served in {time.monotonic() - began:.1f}s", flush=True)
        if not (data / "postgres" / "PG_VERSION").exists():
            problems.append(f"no embedded PostgreSQL data in {data / 'postgres'}")
        if not processes_mentioning(str(data / "postgres")):
            problems.append("no embedded postgres process while serving")
    except NotServed as error:
        problems.append(str(error))
    finally:
        stopping = time.monotonic()
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        try:
            code = run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            code = run.wait()
        print(f"  stopped in {time.monotonic() - stopping:.1f}s (exit {code})", flush=True)
    if code != 0:
        problems.append(f"dev.py run exited with {code} after SIGINT")
    if (data / "postgres" / "postmaster.pid").exists():
        problems.append("postmaster.pid is still there: PostgreSQL did not shut down cleanly")
    time.sleep(0.5)
    left = processes_mentioning(str(data))
    problems += [f"left running (now killed): {line}" for line in left]
    for line in left:
        with contextlib.suppress(OSError):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
    return problems


def main() -> int:
    began = time.monotonic()
    print("== Embedded PostgreSQL: dev.py run without DATABASE_URL", flush=True)
    data = Path(tempfile.mkdtemp(prefix="shopkeeper-demo-check-"))
    log = data.parent / f"{data.name}.log"
    try:
        problems = check(data, log)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if problems:
        print(log.read_text(errors="replace")[-6000:], file=sys.stderr)
        for problem in problems:
            print(f"embedded demo check: {problem}", file=sys.stderr)
        return 1
    log.unlink()
    print(f"== Embedded PostgreSQL demo: ok in {time.monotonic() - began:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
