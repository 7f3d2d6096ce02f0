"""Fixtures for the store tests: a settable clock, and the one `store` every store test runs
on, in turn SQLite in memory, SQLite on disk and a real PostgreSQL (tests/postgres.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import StoreBackend, open_store
from tests.postgres import PostgresServer, pg, pg_dsn, postgres_server, pytest_runtest_makereport

from .factories import FakeClock

# The PostgreSQL fixtures and CI's no-skip rule, for every test under tests/store (pg/ too).
__all__ = ["pg", "pg_dsn", "postgres_server", "pytest_runtest_makereport"]


# Store tests that stop a write midway by reaching into SQLite's own connection; on PostgreSQL
# the same behaviour is tested through asyncpg's (pg/test_pg_cancelled_reservation.py).
SQLITE_INTERNALS = frozenset(
    {"test_store_reserve.py::test_cancelled_reservation_leaves_the_store_consistent_and_usable"}
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Not run on PostgreSQL at all (deselected, never skipped: a skipped PostgreSQL test would
    # look like a suite that did not run there).
    def sqlite_only_on_postgresql(item: pytest.Item) -> bool:
        callspec = getattr(item, "callspec", None)
        on_postgresql = callspec is not None and callspec.params.get("store") == "postgresql"
        name = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
        return on_postgresql and name in SQLITE_INTERNALS

    dropped = [item for item in items if sqlite_only_on_postgresql(item)]
    if dropped:
        items[:] = [item for item in items if item not in dropped]
        config.hook.pytest_deselected(items=dropped)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "file", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[StoreBackend]:
    if request.param != "postgresql":
        path = ":memory:" if request.param == "memory" else tmp_path / "data" / "bot.sqlite3"
        async with await open_store(path, clock=clock) as opened:
            yield opened
        return
    # Asked for here, not in the signature, so the SQLite runs never wait for a server; where
    # none can be had the PostgreSQL runs skip, and in CI they fail (tests/postgres.py).
    server: PostgresServer = request.getfixturevalue("postgres_server")
    dsn = await server.create_database()
    try:
        async with await open_store(dsn, clock=clock) as opened:
            yield opened
    finally:
        await server.drop_database(dsn)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"
