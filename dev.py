#!/usr/bin/env python3
"""Shopkeeper's two commands, for a fresh Linux machine with only Python 3.11+.

    python3 dev.py run    # venv, install, embedded PostgreSQL, migrate, seed, Stripe, serve, worker
    python3 dev.py test   # + dev tools; ruff, mypy, makemigrations --check, pytest on PostgreSQL

Standard library only: this script creates the virtualenv everything else runs in.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".shopkeeper-installed"
EMBEDDED_POSTGRES = "shopkeeper.demo.embedded_postgres"
DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/shopkeeper"
# What each command installs: the demo needs the runtime and the `demo` extra; the test command
# adds the `dev` extra (pytest, mypy, ruff, schemathesis, Playwright).
RUN_EXTRAS = ("demo",)
TEST_EXTRAS = ("demo", "dev")
# The test command runs on the development defaults whatever the caller's shell says: every
# setting (DATABASE_URL, STRIPE_*, SHOPKEEPER_*, ALLOWED_HOSTS) is dropped but the test knobs.
TEST_KNOBS = frozenset(
    {
        "SHOPKEEPER_REQUIRE_POSTGRES",
        "SHOPKEEPER_REQUIRE_BROWSER",
        "SHOPKEEPER_REQUIRE_SCALE",
        "SHOPKEEPER_SCALE_BASE_PORT",
        "SHOPKEEPER_TEST_DATABASE_URL",
        "SHOPKEEPER_CHROMIUM",
    }
)


def say(message: str = "") -> None:
    print(message, flush=True)


def banner(*lines: str) -> None:
    rule = "!" * 78
    say(f"\n{rule}")
    for line in lines:
        say(f"!!  {line}")
    say(f"{rule}\n")


def fail(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


# --- the virtualenv ---------------------------------------------------------------------------


def venv_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(VENV)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONHOME", None)
    env.update(extra)
    return env


def install_fingerprint() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def installed_extras(fingerprint: str) -> frozenset[str] | None:
    """The extras the stamp says were installed from this pyproject.toml; None: install again."""
    stamp = STAMP.read_text().split() if STAMP.exists() else []
    if not stamp or stamp[0] != fingerprint or not (BIN / "shopkeeper").exists():
        return None
    return frozenset(stamp[1:])


def ensure_venv(extras: tuple[str, ...] = TEST_EXTRAS) -> None:
    """Create .venv and install the project with `extras` (unless they are already there)."""
    if not (BIN / "python").exists():
        say(f"Creating the virtualenv in {VENV} ...")
        created = subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=False)
        if created.returncode != 0 or not (BIN / "python").exists():
            shutil.rmtree(VENV, ignore_errors=True)
            fail(
                "could not create a virtualenv. On Debian/Ubuntu install the venv module "
                "first: sudo apt-get install python3-venv"
            )
    fingerprint = install_fingerprint()
    installed = installed_extras(fingerprint)
    if installed is not None and installed.issuperset(extras):
        return
    wanted = sorted({*extras, *(installed or ())})
    say(f"Installing Shopkeeper with {', '.join(wanted)} into .venv ...")
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check"]
    steps = [
        [*pip, "install", "--upgrade", "pip"],
        [*pip, "install", "-e", f".[{','.join(wanted)}]"],
    ]
    for step in steps:
        if subprocess.run(step, cwd=ROOT, env=venv_env(), check=False).returncode != 0:
            fail("installation failed (see pip's output above)")
    STAMP.write_text(" ".join([fingerprint, *wanted]) + "\n")


def shopkeeper(*args: str) -> list[str]:
    return [str(BIN / "shopkeeper"), *args]


# --- the embedded PostgreSQL -------------------------------------------------------------------


def start_embedded_postgres(data: Path, *options: str) -> subprocess.Popen[str]:
    """Start the venv's embedded PostgreSQL (shopkeeper/demo/embedded_postgres.py) on `data`.

    It runs in a session of its own, so Ctrl-C reaches dev.py alone, which stops the servers
    first and the database last; it stops by itself when dev.py dies (its stdin closes).
    """
    return subprocess.Popen(
        [str(BIN / "python"), "-m", EMBEDDED_POSTGRES, "--data", str(data), *options],
        cwd=ROOT,
        env=venv_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def embedded_url(database: subprocess.Popen[str]) -> str:
    """The DATABASE_URL the embedded PostgreSQL prints once it is ready."""
    assert database.stdout is not None
    url = database.stdout.readline().strip()
    if not url:
        raise RuntimeError(f"the embedded PostgreSQL did not start (exit {database.wait()})")
    return url


def stop_embedded_postgres(database: subprocess.Popen[str] | None) -> None:
    if database is None:
        return
    if database.poll() is None:
        database.terminate()
    try:
        database.wait(timeout=60)
    except subprocess.TimeoutExpired:
        database.kill()
        database.wait()


# --- run --------------------------------------------------------------------------------------


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process for port {port} exited with {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on {host}:{port} after {timeout:.0f}s")


def run_checked(command: list[str], env: dict[str, str], what: str) -> str:
    """Run a step of `run`, echo its output, and return it."""
    result = subprocess.run(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    say(result.stdout.rstrip())
    if result.returncode != 0:
        fail(f"{what} failed (exit {result.returncode})")
    return result.stdout


class Stop(Exception):
    """SIGTERM or SIGINT: stop the servers."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def command_run(args: argparse.Namespace) -> int:
    ensure_venv(RUN_EXTRAS)
    for port in (args.port, args.stripe_port):
        if not port_is_free(args.host, port):
            fail(f"port {port} on {args.host} is in use; choose another (see --help)")
    data_dir = Path(os.environ.get("SHOPKEEPER_DATA_DIR", ROOT / "var"))
    data_dir.mkdir(parents=True, exist_ok=True)
    env = venv_env(
        STRIPE_API_BASE=f"http://{args.host}:{args.stripe_port}", SHOPKEEPER_DATA_DIR=str(data_dir)
    )
    env.setdefault("SHOPKEEPER_SITE_URL", f"http://{args.host}:{args.port}")
    if not env.get("SHOPKEEPER_EMAIL_URL"):
        # Customer e-mails are caught locally: one file per mail the worker sends.
        (data_dir / "mail").mkdir(exist_ok=True)
        env["SHOPKEEPER_EMAIL_URL"] = (data_dir / "mail").resolve().as_uri()
    processes: list[subprocess.Popen[bytes]] = []
    database: subprocess.Popen[str] | None = None
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        if os.environ.get("DATABASE_URL"):
            where = "DATABASE_URL"
        else:
            say(f"== Starting the embedded PostgreSQL (data in {data_dir / 'postgres'})")
            database = start_embedded_postgres(data_dir / "postgres")
            env["DATABASE_URL"] = embedded_url(database)
            where = f"embedded PostgreSQL, DATABASE_URL={env['DATABASE_URL']}"
        say("== Migrating the database")
        run_checked(shopkeeper("migrate", "--noinput"), env, "migrate")
        return serve_demo(args, env, data_dir, processes, where)
    except Stop:
        say("\nStopping ...")
        return 0
    except RuntimeError as error:
        say(f"dev.py: {error}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_all(processes)
        stop_embedded_postgres(database)
        say("Stopped.")


def serve_demo(
    args: argparse.Namespace,
    env: dict[str, str],
    data_dir: Path,
    processes: list[subprocess.Popen[bytes]],
    database: str,
) -> int:
    """localstripe, the seed, gunicorn, the worker; then wait until one of them exits (or a
    signal comes)."""
    stripe_base = env["STRIPE_API_BASE"]
    site = f"http://{args.host}:{args.port}"
    say(f"== Starting the offline Stripe (localstripe) on {stripe_base}")
    localstripe = subprocess.Popen(
        [
            str(BIN / "python"),
            *("-m", "shopkeeper.demo.localstripe_server"),
            *("--host", args.host, "--port", str(args.stripe_port)),
            *("--store", str(data_dir / "localstripe.pickle")),
        ],
        cwd=ROOT,
        env=env,
    )
    processes.append(localstripe)
    wait_for_port(args.host, args.stripe_port, localstripe, timeout=30)
    say("== Seeding demo data")
    seeded = run_checked(shopkeeper("seed"), env, "seed")
    login = next((line for line in seeded.splitlines() if line.startswith("Owner login:")), "")
    run_checked(
        shopkeeper("localstripe_webhook", "--url", f"{site}/webhooks/stripe"),
        env,
        "webhook registration",
    )
    say(f"== Starting Shopkeeper on {site}")
    server = subprocess.Popen(
        shopkeeper(
            *("serve", "--host", args.host, "--port", str(args.port)),
            *("--workers", str(args.workers)),
        ),
        cwd=ROOT,
        env=env,
    )
    processes.append(server)
    say("== Starting the worker (webhook processing, refund settlement, customer e-mails)")
    worker = subprocess.Popen(shopkeeper("worker", "--concurrency", "2"), cwd=ROOT, env=env)
    processes.append(worker)
    wait_for_port(args.host, args.port, server, timeout=60)
    say(
        f"\n  Storefront:  {site}/\n  Admin:       {site}/admin/\n"
        f"  {login}\n  API docs:    {site}/api/docs\n"
        f"  Stripe:      offline (localstripe at {stripe_base}); test card 4242 4242 4242 4242\n"
        f"  Database:    {database}\n"
        f"  Worker:      shopkeeper worker (pid {worker.pid})\n"
        f"  Mail:        {mail_shown(env['SHOPKEEPER_EMAIL_URL'])}"
        "\n\n  Press Ctrl-C to stop.\n"
    )
    while all(process.poll() is None for process in processes):
        time.sleep(0.5)
    names = {
        id(localstripe): "localstripe",
        id(server): "shopkeeper serve",
        id(worker): "shopkeeper worker",
    }
    failed = next(p for p in processes if p.poll() is not None)
    say(f"dev.py: {names[id(failed)]} exited with {failed.returncode}; stopping")
    return 1


# --- test -------------------------------------------------------------------------------------

SUMMARY_RE = re.compile(r"^=+ (.+) in [\d.]+s.* =+$")


class Report:
    """One line per step and per test tier, printed at the end."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failed = False

    def add(self, name: str, ok: bool | None, detail: str = "") -> None:
        status = {True: "ok", False: "FAILED", None: "SKIPPED"}[ok]
        self.failed = self.failed or ok is False
        self.lines.append(f"  {name:<34} {status:<8} {detail}".rstrip())

    def show(self) -> None:
        say("\n" + "=" * 30 + " dev.py test summary " + "=" * 29)
        for line in self.lines:
            say(line)
        say("=" * 80)
        say("RESULT: " + ("FAILED" if self.failed else "passed"))


def run_step(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a command, streaming its output; return its exit code and pytest's summary line."""
    say(f"\n$ {' '.join(Path(c).name if c.startswith(str(BIN)) else c for c in command)}")
    summary = ""
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            match = SUMMARY_RE.match(line.strip())
            if match:
                summary = match.group(1)
        sys.stdout.flush()
    return process.returncode, summary


def tier_counts(junit: Path) -> dict[str, Counter[str]]:
    """Outcomes per tier (tests/unit, tests/integration, ...) from pytest's JUnit XML."""
    tiers: dict[str, Counter[str]] = {}
    if not junit.exists():
        return tiers
    for case in ET.parse(junit).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        tier = parts[1] if len(parts) > 1 and parts[0] == "tests" else "other"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        tiers.setdefault(tier, Counter())[outcome] += 1
    return tiers


def report_pytest(report: Report, code: int, summary: str, junit: Path) -> None:
    report.add("pytest", code == 0, summary or f"exit code {code}")
    for tier, counts in sorted(tier_counts(junit).items()):
        detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        report.add(f"  tests/{tier}", counts["failed"] == 0, detail)


def postgres_reachable(url: str, env: dict[str, str]) -> str:
    """'' when the server answers, else the reason it does not."""
    probe = (
        "import sys, psycopg\n"
        "try:\n"
        "    psycopg.connect(sys.argv[1], dbname='postgres', connect_timeout=3).close()\n"
        "except Exception as error:\n"
        "    print(str(error).strip().splitlines()[0] if str(error).strip() else repr(error))\n"
        "    sys.exit(1)\n"
    )
    result = subprocess.run(
        [str(BIN / "python"), "-c", probe, url], env=env, capture_output=True, text=True
    )
    return "" if result.returncode == 0 else (result.stdout.strip() or result.stderr.strip())


def mail_shown(url: str) -> str:
    """Where the demo's customer e-mails go, for the banner."""
    if url.startswith("file:"):
        folder = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        return f"customer e-mails are files in {folder}/ (e.g. `ls -t {folder} | head`)"
    return f"customer e-mails go to SHOPKEEPER_EMAIL_URL={without_password(url)}"


def without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def test_env(tmp: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in venv_env().items()
        if name in TEST_KNOBS
        or not (name.startswith(("SHOPKEEPER_", "STRIPE_", "DATABASE_")) or name == "ALLOWED_HOSTS")
    }
    # A data directory of the run's own, so no test ever touches var/ (the demo's data).
    (tmp / "var").mkdir()
    env["SHOPKEEPER_DATA_DIR"] = str(tmp / "var")
    return env


def database_for_tests(
    report: Report, env: dict[str, str], tmp: Path
) -> Generator[str, None, None]:
    """The DATABASE_URL the run tests on: the PostgreSQL at SHOPKEEPER_TEST_DATABASE_URL when it
    answers, else an embedded one started for this run (its data in the run's temporary
    directory) and stopped after it. SHOPKEEPER_REQUIRE_POSTGRES=1 (CI): that server must answer."""
    pg_url = os.environ.get("SHOPKEEPER_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    shown = without_password(pg_url)
    why_not = postgres_reachable(pg_url, env)
    if not why_not:
        report.add("PostgreSQL server", True, shown)
        yield pg_url
        return
    say(f"\nNo PostgreSQL at {shown} ({why_not[:120]})")
    if os.environ.get("SHOPKEEPER_REQUIRE_POSTGRES") == "1":
        banner(f"NO POSTGRESQL at {shown}", "SHOPKEEPER_REQUIRE_POSTGRES=1: no embedded one.")
        report.add("PostgreSQL server", False, f"nothing at {shown}")
        return
    say("== Starting an embedded PostgreSQL for the tests")
    database = start_embedded_postgres(tmp / "postgres", "--fast")
    try:
        url = embedded_url(database)
        report.add("PostgreSQL server", True, f"embedded (nothing at {shown})")
        yield url
    except RuntimeError as error:
        banner(f"NO POSTGRESQL: nothing at {shown}, and {error}", "No test can run without one.")
        report.add("PostgreSQL server", False, f"nothing at {shown}, and {error}")
    finally:
        stop_embedded_postgres(database)


def command_test(pytest_args: list[str]) -> int:
    ensure_venv(TEST_EXTRAS)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="shopkeeper-test-") as tmpdir:
        tmp = Path(tmpdir)
        env = test_env(tmp)
        with contextlib.closing(database_for_tests(report, env, tmp)) as databases:
            for database_url in databases:
                run_suite(report, {**env, "DATABASE_URL": database_url}, tmp, pytest_args)
    report.show()
    return 1 if report.failed else 0


def run_suite(report: Report, env: dict[str, str], tmp: Path, pytest_args: list[str]) -> None:
    """Lint, types, migrations check, then pytest once over every tier (which tiers run, and
    when a missing one fails, is tests/conftest.py's to say). Hypothesis at CI depth."""
    checks = [
        ("ruff check", [str(BIN / "ruff"), "check", "."]),
        ("ruff format --check", [str(BIN / "ruff"), "format", "--check", "."]),
        ("mypy", [str(BIN / "mypy")]),
        ("lint-imports", [str(BIN / "lint-imports")]),
        ("makemigrations --check", shopkeeper("makemigrations", "--check", "--dry-run")),
    ]
    for name, command in checks:
        code, _ = run_step(command, env)
        report.add(name, code == 0, "" if code == 0 else f"exit code {code}")
    junit = tmp / "pytest.xml"
    # Two workers, a test module each at a time (its module fixtures stay in one process); each
    # worker has its own test database (test_<name>_gw0, _gw1). docs/development.md has timings.
    workers = ["-n", "2", "--dist", "loadfile"]
    code, summary = run_step(
        [str(BIN / "pytest"), *workers, f"--junitxml={junit}", *pytest_args],
        {**env, "HYPOTHESIS_PROFILE": "ci"},
    )
    report_pytest(report, code, summary, junit)


def main(argv: list[str] | None = None) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - say so rather than fail obscurely
        fail(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    parser = argparse.ArgumentParser(prog="dev.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the offline demo on http://127.0.0.1:8000")
    run.add_argument("--host", default=os.environ.get("SHOPKEEPER_HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("SHOPKEEPER_PORT", "8000")))
    run.add_argument(
        "--stripe-port", type=int, default=int(os.environ.get("LOCALSTRIPE_PORT", "8420"))
    )
    run.add_argument("--workers", type=int, default=2)
    commands.add_parser(
        "test",
        help="lint, type-check, migrations check, pytest (on PostgreSQL)",
        description="Arguments after `test` go to pytest, e.g. `python3 dev.py test -k refund`.",
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "test":
        return command_test(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return command_run(args)


if __name__ == "__main__":
    sys.exit(main())
