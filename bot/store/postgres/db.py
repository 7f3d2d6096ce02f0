"""One PostgreSQL database: its asyncpg pool, the read and write blocks every table group runs its
statements in, and the migrations applied on opening."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bot.store.postgres.schema import apply_migrations, bundled_migrations, schema_version
from bot.store.schema import Migration

Clock = Callable[[], float]


def dsn_without_password(dsn: str) -> str:
    """The DSN with any password taken out of its user part and its query, for logs."""
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
    query = "&".join(
        pair for pair in parts.query.split("&") if pair and not pair.startswith("password=")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class PgDatabase:
    """The pool of one PostgreSQL database. Build it with `await PgDatabase.open(dsn)`.

    Unlike SQLite's one connection under a lock, every block takes its own pool connection, so
    writes from this process and from other processes run side by side; what keeps them apart
    is PostgreSQL's row locks, taken where a decision depends on a row (see PgJobs.create).
    """

    def __init__(self, pool: asyncpg.Pool, dsn: str, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock
        self.dsn_for_logs = dsn_without_password(dsn)

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        clock: Clock = time.time,
        min_size: int = 1,
        max_size: int = 10,
        migrations: Sequence[Migration] | None = None,
    ) -> PgDatabase:
        """Connect a pool to `dsn` and apply pending migrations.

        The password comes from the URL or, when it has none, from PGPASSWORD (asyncpg reads
        it itself); errors and logs only ever see `dsn_for_logs`.
        """
        try:
            pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
        except (OSError, asyncpg.PostgresError) as exc:
            # The DSN shown is the one without its password; asyncpg's own messages never quote it.
            raise ConnectionError(
                f"cannot connect to PostgreSQL at {dsn_without_password(dsn)}: {exc}"
            ) from None
        assert pool is not None  # create_pool returns None only when not awaited
        try:
            chosen = bundled_migrations() if migrations is None else list(migrations)
            async with pool.acquire() as conn:
                await apply_migrations(conn, chosen, int(clock()))
        except BaseException:
            await pool.close()
            raise
        return cls(pool, dsn, clock)

    async def close(self) -> None:
        """Close the pool, waiting for the connections in use to be released."""
        await self._pool.close()

    def now(self) -> int:
        """The store's clock, in epoch seconds."""
        return int(self._clock())

    @asynccontextmanager
    async def write(self) -> AsyncIterator[asyncpg.Connection]:
        """A pool connection in one transaction, committed when the block ends.

        READ COMMITTED, PostgreSQL's default: each statement sees the latest commits, and a
        statement that locks a row (FOR UPDATE, an upsert) waits for its holder and then reads
        the row as that holder left it. Decisions that depend on a total lock its row first,
        so this is enough, and no transaction ever needs a serialization-failure retry.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[asyncpg.Connection]:
        """A pool connection with no explicit transaction: each statement sees the last commit."""
        async with self._pool.acquire() as conn:
            yield conn

    async def schema_version(self) -> int:
        """The newest migration applied to the database."""
        async with self.read() as conn:
            return await schema_version(conn)

    async def server_version(self) -> str:
        """The server's version, e.g. "15.8", for `check`."""
        async with self.read() as conn:
            return str(await conn.fetchval("SHOW server_version"))
