"""One SQLite database file: its connections, the lock that serialises them, the read and write
blocks every table group runs its statements in, and the migrations applied on opening."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.store.schema import Migration, apply_migrations, bundled_migrations

Clock = Callable[[], float]


class Database:
    """The open connections of one database. Build it with `await Database.open(path)`.

    aiosqlite runs the connection on one thread, so two coroutines that each BEGIN ... COMMIT
    would interleave their statements inside one transaction. Every database call therefore
    holds `_lock`; writes also take SQLite's write lock up front (BEGIN IMMEDIATE) so several
    processes sharing the file stay correct, waiting on each other through the busy timeout.

    A database file also gets a second, read-only connection for the reads a command makes
    before Discord's 3 s acknowledgement (`glance`): each is one statement seeing the last
    commit (WAL lets it run beside a write), so it waits for no lock and no queue of writes.
    The reservation re-checks everything atomically on the main connection.
    """

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: str,
        clock: Clock,
        reader: aiosqlite.Connection | None = None,
    ) -> None:
        self._db = db
        self._reader = reader
        self._clock = clock
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        clock: Clock = time.time,
        busy_timeout_ms: int = 5000,
        migrations: Sequence[Migration] | None = None,
    ) -> Database:
        """Open (creating if needed) the database at `path` and apply pending migrations.

        `":memory:"` gives a private in-memory database, for tests.
        """
        name = str(path)
        if name != ":memory:":
            await asyncio.to_thread(Path(name).parent.mkdir, parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves instead of sqlite3's implicit ones.
        db = await aiosqlite.connect(name, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await db.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit survives power loss too, so a job recorded as sent is never resent.
            await db.execute("PRAGMA synchronous = FULL")
            await db.execute("PRAGMA foreign_keys = ON")
            chosen = bundled_migrations() if migrations is None else list(migrations)
            await apply_migrations(db, chosen, int(clock()))
        except BaseException:
            await db.close()
            raise
        reader = None
        if name != ":memory:":  # a second connection to ":memory:" would be another database
            reader = await aiosqlite.connect(name, isolation_level=None)
            try:
                reader.row_factory = aiosqlite.Row
                await reader.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                await reader.execute("PRAGMA query_only = ON")
            except BaseException:
                await reader.close()
                await db.close()
                raise
        return cls(db, name, clock, reader)

    async def close(self) -> None:
        """Close the connections; the database cannot be used afterwards."""
        async with self._lock:
            try:
                if self._reader is not None:
                    await self._reader.close()
            finally:
                await self._db.close()

    def now(self) -> int:
        """The store's clock, in epoch seconds."""
        return int(self._clock())

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction on the main connection, committed when the block ends."""
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException:
                # Awaited directly (not shielded) so the ROLLBACK is queued on the connection's
                # thread before the lock is released, even when this task is being cancelled.
                await self._db.rollback()
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """The main connection, under the lock, for reads."""
        async with self._lock:
            yield self._db

    @asynccontextmanager
    async def glance(self) -> AsyncIterator[aiosqlite.Connection]:
        """The read-only connection, for ONE statement (no transaction spans two); without
        one (":memory:") the main connection under the lock."""
        if self._reader is None:
            async with self.read() as db:
                yield db
        else:
            yield self._reader


# Statement helpers for the table groups; each runs inside the caller's read or write block.


async def fetchone(db: aiosqlite.Connection, sql: str, params: Sequence[object] = ()) -> Any:
    """The statement's first row, or None."""
    # One round trip to the connection's thread (execute, fetchone and close would be three),
    # and the statement is run to its end, so a RETURNING insert never blocks a COMMIT.
    rows = await db.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def scalar(db: aiosqlite.Connection, sql: str, params: Sequence[object] = ()) -> Any:
    """The first column of the statement's first row, or None."""
    row = await fetchone(db, sql, params)
    return None if row is None else row[0]


async def exists(db: aiosqlite.Connection, sql: str, params: Sequence[object]) -> bool:
    """Whether the statement returns a row."""
    return await fetchone(db, sql, params) is not None
