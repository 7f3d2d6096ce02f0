"""Migrations: applied from empty, recorded, never re-applied, all-or-nothing, and guarded."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.store import (
    DatabaseTooNew,
    Migration,
    MigrationEdited,
    MigrationFailed,
    Store,
    bundled_migrations,
)

from .factories import FakeClock, limits, new_job

EXPECTED_TABLES = {
    "schema_migrations",
    "jobs",
    "ledger",
    "role_limits",
    "member_limits",
    "blocked_members",
    "guild_settings",
    "guild_default_models",
    "guild_channels",
    "guild_blocklist",
    "audit",
    "meta",
    "ledger_member_day",
    "ledger_guild_day",
    "ledger_day",
}


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows} - {"sqlite_sequence"}


def recorded(path: Path) -> list[tuple[int, str, int]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()


def test_bundled_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in bundled_migrations()]
    assert versions == list(range(1, len(versions) + 1))


async def test_open_on_empty_file_creates_every_table_and_records_versions(
    db_path: Path, clock: FakeClock
) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        assert await store.meta.schema_version() == bundled_migrations()[-1].version
    assert tables(db_path) == EXPECTED_TABLES
    assert recorded(db_path) == [(m.version, m.name, clock.now) for m in bundled_migrations()]


async def test_reopening_applies_nothing_again(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock):
        pass
    first = recorded(db_path)
    clock.now += 3600
    async with await Store.open(db_path, clock=clock) as store:
        assert await store.meta.schema_version() == first[-1][0]
    assert recorded(db_path) == first  # applied_at kept from the first run


async def test_data_survives_reopening(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    async with await Store.open(db_path, clock=clock) as store:
        again = await store.jobs.get(job.id)
    assert again == job


async def test_file_database_uses_wal(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock):
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_two_stores_opened_at_once_on_one_new_file_apply_migrations_once(
    db_path: Path, clock: FakeClock
) -> None:
    first, second = await asyncio.gather(
        Store.open(db_path, clock=clock), Store.open(db_path, clock=clock)
    )
    async with first, second:
        assert await first.meta.schema_version() == await second.meta.schema_version()
    assert [v for v, _, _ in recorded(db_path)] == [m.version for m in bundled_migrations()]


async def test_new_migration_is_applied_on_next_open_in_order(
    db_path: Path, clock: FakeClock
) -> None:
    base = bundled_migrations()
    async with await Store.open(db_path, clock=clock, migrations=base):
        pass
    extra = Migration(
        base[-1].version + 1,
        "add_notes",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n"
        "INSERT INTO notes (body) VALUES ('first; with a semicolon');\n",
    )
    clock.now += 60
    async with await Store.open(db_path, clock=clock, migrations=[*base, extra]) as store:
        assert await store.meta.schema_version() == extra.version
    assert recorded(db_path)[-1] == (extra.version, "add_notes", clock.now)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("first; with a semicolon",)]


async def test_failing_migration_keeps_nothing_of_itself(db_path: Path, clock: FakeClock) -> None:
    base = bundled_migrations()
    broken = Migration(
        base[-1].version + 1,
        "broken",
        "CREATE TABLE half_done (id INTEGER);\nINSERT INTO no_such_table VALUES (1);\n",
    )
    with pytest.raises(MigrationFailed, match="broken"):
        await Store.open(db_path, clock=clock, migrations=[*base, broken])
    assert "half_done" not in tables(db_path)
    assert [v for v, _, _ in recorded(db_path)] == [m.version for m in base]


async def test_edited_migration_is_refused(db_path: Path, clock: FakeClock) -> None:
    base = bundled_migrations()
    async with await Store.open(db_path, clock=clock, migrations=base):
        pass
    edited = [Migration(base[0].version, base[0].name, base[0].sql + "\n-- sneaky edit\n")]
    with pytest.raises(MigrationEdited, match="new numbered migration"):
        await Store.open(db_path, clock=clock, migrations=[*edited, *base[1:]])


async def test_database_from_a_newer_bot_is_refused(db_path: Path, clock: FakeClock) -> None:
    base = bundled_migrations()
    newer = Migration(base[-1].version + 1, "future", "CREATE TABLE future (id INTEGER);")
    async with await Store.open(db_path, clock=clock, migrations=[*base, newer]):
        pass
    with pytest.raises(DatabaseTooNew, match="upgrade the bot"):
        await Store.open(db_path, clock=clock, migrations=base)


async def test_foreign_keys_are_enforced(clock: FakeClock) -> None:
    async with await Store.open(":memory:", clock=clock) as store:
        with pytest.raises(sqlite3.IntegrityError):
            await store.jobs.create(
                new_job(parent_job_id="nosuchid"), cost=20, actor_id=100, **limits()
            )
        assert await store.jobs.unfinished() == []
