"""Schema migrations: migrations/NNNN_name.sql files, applied in order, recorded once."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import aiosqlite

from bot.store.errors import DatabaseTooNew, MigrationEdited, MigrationFailed

_FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change, as shipped with the bot."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the file's text, to notice an applied migration edited afterwards."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The file split into single statements (trigger bodies kept whole)."""
        statements: list[str] = []
        pending = ""
        for line in self.sql.splitlines(keepends=True):
            pending += line
            if sqlite3.complete_statement(pending):
                statements.append(pending.strip())
                pending = ""
        leftover = [
            ln for ln in pending.splitlines() if ln.strip() and not ln.strip().startswith("--")
        ]
        if leftover:
            raise ValueError(f"migration {self.version:04d}_{self.name} ends mid-statement")
        return statements


def bundled_migrations() -> list[Migration]:
    """The migrations shipped in bot/store/migrations, in version order."""
    found: list[Migration] = []
    for entry in resources.files("bot.store").joinpath("migrations").iterdir():
        match = _FILENAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version number: {versions}")
    return found


def check_applied(applied: Mapping[int, tuple[str, str]], migrations: Sequence[Migration]) -> None:
    """Refuse a database newer than this bot, or one whose applied migration was edited since
    (any backend: `applied` maps each recorded version to its name and checksum)."""
    known = {m.version: m for m in migrations}
    newest_known = max(known, default=0)
    if applied and max(applied) > newest_known:
        raise DatabaseTooNew(max(applied), newest_known)
    for version, (name, checksum) in applied.items():
        if version in known and known[version].checksum != checksum:
            raise MigrationEdited(version, name)


async def apply_migrations(
    db: aiosqlite.Connection, migrations: list[Migration], now: int
) -> list[int]:
    """Apply the migrations `db` (an aiosqlite connection) lacks; return the versions applied.

    Each migration runs in its own BEGIN IMMEDIATE transaction and is recorded in the same
    transaction, so a crash leaves either all of it or none, and two bots starting at once on
    the same file apply it once.
    """
    await db.execute(_BOOTSTRAP)
    applied = await _applied(db)
    check_applied(applied, migrations)

    done: list[int] = []
    for migration in migrations:
        if migration.version in applied:
            continue
        await db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied it while we waited for the write lock.
            async with db.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ) as cursor:
                if await cursor.fetchone() is not None:
                    await db.execute("ROLLBACK")
                    continue
            for statement in migration.statements():
                await db.execute(statement)
            await db.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                "VALUES (?, ?, ?, ?)",
                (migration.version, migration.name, migration.checksum, now),
            )
            await db.execute("COMMIT")
        except BaseException as exc:
            await db.rollback()
            if isinstance(exc, sqlite3.Error):
                raise MigrationFailed(migration.version, migration.name, exc) from exc
            raise
        done.append(migration.version)
    return done


async def _applied(db: aiosqlite.Connection) -> dict[int, tuple[str, str]]:
    async with db.execute("SELECT version, name, checksum FROM schema_migrations") as cursor:
        rows = await cursor.fetchall()
    return {int(row[0]): (str(row[1]), str(row[2])) for row in rows}
