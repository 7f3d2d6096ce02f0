"""PgDatabase: the pool opens migrated, a write commits whole or not at all, no password shown."""

from __future__ import annotations

import socket

import pytest

from bot.store.postgres.db import PgDatabase, dsn_without_password
from bot.store.postgres.schema import bundled_migrations

NOW = 1_795_300_000


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://pika:s3cret@db:5432/pika", "postgresql://pika@db:5432/pika"),
        ("postgresql://pika@db/pika", "postgresql://pika@db/pika"),
        ("postgresql://:s3cret@db/pika", "postgresql://db/pika"),
        (
            "postgresql://db/pika?password=s3cret&sslmode=require",
            "postgresql://db/pika?sslmode=require",
        ),
    ],
)
def test_the_dsn_for_logs_has_no_password(dsn: str, shown: str) -> None:
    assert dsn_without_password(dsn) == shown


async def test_opening_applies_the_migrations(pg_dsn: str) -> None:
    db = await PgDatabase.open(pg_dsn, clock=lambda: NOW + 0.9)
    try:
        assert await db.schema_version() == bundled_migrations()[-1].version
        assert db.now() == NOW
        assert (await db.server_version())[0].isdigit()
    finally:
        await db.close()


async def test_a_write_block_commits_whole_or_not_at_all(pg_dsn: str) -> None:
    db = await PgDatabase.open(pg_dsn)
    try:
        async with db.write() as conn:
            await conn.execute("INSERT INTO meta VALUES ('a', '1', 0)")
        with pytest.raises(RuntimeError):
            await _write_then_fail(db)
        async with db.read() as conn:
            assert [r["key"] for r in await conn.fetch("SELECT key FROM meta")] == ["a"]
    finally:
        await db.close()


async def _write_then_fail(db: PgDatabase) -> None:
    async with db.write() as conn:
        await conn.execute("INSERT INTO meta VALUES ('b', '2', 0)")
        raise RuntimeError("boom")


async def test_a_failed_connection_does_not_show_the_password() -> None:
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(ConnectionError) as raised:
        await PgDatabase.open(f"postgresql://pika:hunter2@127.0.0.1:{port}/pika")
    assert "hunter2" not in str(raised.value)
    assert f"postgresql://pika@127.0.0.1:{port}/pika" in str(raised.value)
