"""A PostgreSQL server for the tests: the one `PIKABOT_TEST_POSTGRES` names, or a throwaway one.

With `PIKABOT_TEST_POSTGRES` set (a `postgresql://` DSN of a role allowed to create databases),
the tests use that server. Otherwise they start their own for the session from the PostgreSQL
binaries on the machine, in a temporary directory, on 127.0.0.1 and a free port, with fsync off,
and remove it at the end. Every test gets a database of its own, created from a template.

Why Debian's binaries (/usr/lib/postgresql/15/bin) rather than the `pgserver` wheel: they are
the PostgreSQL an operator on Debian or Ubuntu installs, packaged with the distribution's
security fixes, and the official `postgres` image for compose.yaml can pin the same major
version, so the tests meet the server the bot will meet. They add no dependency to the
project, and a clean CI machine gets them with one `apt-get install postgresql` (.ci/run). The
wheel bundles a PostgreSQL 16 of its own; what it offers beyond that, starting when run as
root, costs nothing here: as root the server simply runs as the `postgres` user, which the
Debian package creates. Other installations work too: the newest /usr/lib/postgresql/*/bin
wins, then `initdb` on PATH.

In CI (`CI` set to true) a PostgreSQL that cannot be found or started fails the tests that need
it, and so does any such test that skips; elsewhere they are skipped, saying why.

The fixtures and the hook below are used by importing them into a conftest (tests/store/pg), or
for the whole suite with `pytest_plugins = ["tests.postgres"]` in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    import asyncpg

ENV_DSN = "PIKABOT_TEST_POSTGRES"
# The database every test database is copied from; tests that need a schema apply it themselves.
TEMPLATE = "pika_template"
_START_TIMEOUT_S = 60
_PR_SET_PDEATHSIG = 1  # prctl(2), Linux


class PostgresUnavailable(Exception):
    """No PostgreSQL could be found or started for the tests."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip the test for want of PostgreSQL, or fail it in CI where it must run."""
    if in_ci():
        pytest.fail(f"PostgreSQL is required in CI but {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL for these tests: {reason} (set {ENV_DSN} to use a server)")


def find_bindir() -> Path | None:
    """The directory of initdb, pg_ctl and postgres: Debian's newest, else whatever PATH has."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def with_database(dsn: str, database: str) -> str:
    """The same server and role as `dsn`, on another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


@dataclass
class PostgresServer:
    """A PostgreSQL server the tests may create databases on; `dsn` names its admin database."""

    dsn: str
    _names: Iterator[int] = field(default_factory=itertools.count, repr=False)
    _template_ready: bool = field(default=False, repr=False)

    def new_database_name(self) -> str:
        # The pid keeps two test sessions on one shared server from choosing the same name.
        return f"pika_test_{os.getpid()}_{next(self._names)}"

    async def create_database(self) -> str:
        """A new, empty database copied from the template; returns its DSN."""
        import asyncpg

        name = self.new_database_name()
        admin = await asyncpg.connect(self.dsn)
        try:
            if not self._template_ready:
                exists = await admin.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", TEMPLATE
                )
                if not exists:
                    with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                        await admin.execute(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0')
                self._template_ready = True
            # FILE_COPY (PostgreSQL 15 and later) copies the files instead of writing every
            # page to the WAL: twice as fast here, where fsync is off.
            fast = " STRATEGY FILE_COPY" if admin.get_server_version().major >= 15 else ""
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"{fast}')
        finally:
            await admin.close()
        return with_database(self.dsn, name)

    async def drop_database(self, dsn: str) -> None:
        import asyncpg

        name = urlsplit(dsn).path.lstrip("/")
        admin = await asyncpg.connect(self.dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary directory, for one test session.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` system
    user and its programs run as that user; as anyone else they run as oneself. The server is a
    child of the test process that dies with it (a parent-death signal), so a test run killed
    midway leaves no server behind on a machine others share.
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="pikabot-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable(
                    "running as root and there is no `postgres` user to run the server as"
                ) from exc
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def start(self) -> PostgresServer:
        initdb = subprocess.run(
            [
                str(self.bindir / "initdb"),
                *("--pgdata", str(self.data), "--username", "postgres", "--auth", "trust"),
                *("--encoding", "UTF8", "--locale", "C", "--no-sync"),
            ],
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_S,
            check=False,
            **self._user,
        )
        if initdb.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {initdb.stderr.strip()[-2000:]}")
        last = ""
        # A free port can be taken between choosing it and the server binding it: try again.
        for _ in range(3):
            self.port = _free_port()
            last = self._start_on(self.port)
            if not last:
                return PostgresServer(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")
        raise PostgresUnavailable(f"the server did not start: {last}")

    def _start_on(self, port: int) -> str:
        """Start the server on `port` and wait until it accepts connections; '' or why not."""
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(self.root),
            # A throwaway database: durability buys nothing and costs seconds.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    *(f"-c{key}={value}" for key, value in settings.items()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                **self._user,
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return self.log.read_text(errors="replace")[-2000:]
            if _postmaster_status(self.data) == "ready":
                return ""
            # The server says it is ready only in postmaster.pid; pg_ctl polls it the same way.
            time.sleep(0.05)
        self.stop_server()
        return f"not ready after {_START_TIMEOUT_S} s"

    def stop_server(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        # SIGQUIT is PostgreSQL's immediate shutdown: nothing here is worth a checkpoint.
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=_START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        try:
            self.stop_server()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _die_with_parent() -> None:
    """In the server's process before exec (after the switch of user, which would clear it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)


def _postmaster_status(data: Path) -> str:
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return ""
    # Line 8 of postmaster.pid is the server's status: starting, stopping, ready or standby.
    return lines[7].strip() if len(lines) > 7 else ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres_for_session() -> Iterator[PostgresServer]:
    """The server the tests use: `PIKABOT_TEST_POSTGRES`'s, or one started (and stopped) here.

    Raises PostgresUnavailable when there is none; the fixture decides to skip or fail.
    """
    dsn = os.environ.get(ENV_DSN, "").strip()
    if dsn:
        yield PostgresServer(dsn)
        return
    try:
        import asyncpg  # noqa: F401
    except ImportError as exc:
        raise PostgresUnavailable("asyncpg is not installed") from exc
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            "no PostgreSQL binaries found (looked in /usr/lib/postgresql/*/bin and PATH); "
            "install Debian's `postgresql` package"
        )
    server = ThrowawayPostgres(bindir)
    try:
        started = server.start()
    except BaseException:
        server.stop()
        raise
    try:
        yield started
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server; skips (fails in CI) when there is none."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_for_session())
        except PostgresUnavailable as exc:
            unavailable(str(exc))
        yield server


@pytest.fixture
async def pg_dsn(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The DSN of a new, empty database of this test's own, dropped afterwards."""
    dsn = await postgres_server.create_database()
    try:
        yield dsn
    finally:
        await postgres_server.drop_database(dsn)


@pytest.fixture
async def pg(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to this test's own empty database."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI a skipped PostgreSQL test is a failure: the suite must have run on PostgreSQL."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and in_ci() and "postgres_server" in getattr(item, "fixturenames", ()):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"a PostgreSQL test was skipped in CI, which must not happen: {reason}"
