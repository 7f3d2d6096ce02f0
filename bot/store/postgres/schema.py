"""PostgreSQL schema migrations: migrations/NNNN_name.sql, applied in order, recorded once.

The same bookkeeping as SQLite's (bot/store/schema.py): a `schema_migrations` table of version,
name, checksum and time, a refusal of a database newer than the bot or of an applied migration
edited since. What differs is how two processes starting at once are kept apart: PostgreSQL has
transactional DDL, so each migration and its record commit together or not at all, and a
transaction-scoped advisory lock makes the second process wait, then find the version recorded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources

import asyncpg

from bot.store.errors import MigrationFailed
from bot.store.schema import Migration, check_applied

_FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# Any constant every Pika process agrees on; advisory locks are per database, so two bots on
# different databases of one server do not wait for each other. (0x70696b61 is "pika".)
MIGRATION_LOCK = 0x70696B61_00000001

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at bigint NOT NULL
)
"""


def bundled_migrations() -> list[Migration]:
    """The migrations shipped in bot/store/postgres/migrations, in version order."""
    found: list[Migration] = []
    for entry in resources.files("bot.store.postgres").joinpath("migrations").iterdir():
        match = _FILENAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    if not found:
        # A build that left the .sql files out would otherwise "apply" nothing, silently.
        raise ValueError("no PostgreSQL migrations found in bot/store/postgres/migrations")
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version number: {versions}")
    return found


async def apply_migrations(
    conn: asyncpg.Connection, migrations: Sequence[Migration], now: int
) -> list[int]:
    """Apply the migrations the database lacks; return the versions this call applied.

    Each migration runs in its own transaction under `pg_advisory_xact_lock`, re-checks under
    the lock that no other process recorded it meanwhile, and is recorded in that transaction.
    A failing migration leaves nothing of itself behind and raises MigrationFailed.
    """
    async with conn.transaction():
        # Under the lock: two concurrent CREATE TABLE IF NOT EXISTS can both try to create it.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(_BOOTSTRAP)
    applied = await _applied(conn)
    check_applied(applied, migrations)

    done: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in applied:
            continue
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                if await conn.fetchval(
                    "SELECT 1 FROM schema_migrations WHERE version = $1", migration.version
                ):
                    continue  # another process applied it while we waited for the lock
                # No arguments: asyncpg sends the file as one simple query, every statement
                # of it (plpgsql bodies included) inside this transaction.
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                    "VALUES ($1, $2, $3, $4)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                    now,
                )
        except asyncpg.PostgresError as exc:
            raise MigrationFailed(migration.version, migration.name, exc) from exc
        done.append(migration.version)
    return done


async def schema_version(conn: asyncpg.Connection) -> int:
    """The newest migration applied, or 0 for a database the bot never migrated."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def _applied(conn: asyncpg.Connection) -> dict[int, tuple[str, str]]:
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
    return {int(row["version"]): (str(row["name"]), str(row["checksum"])) for row in rows}
