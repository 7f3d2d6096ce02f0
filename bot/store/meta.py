"""Bot-wide values kept across restarts, the schema version, and what the bot forgets: a member
who asks, and the personal data of jobs past the retention bound."""

from __future__ import annotations

from bot.store.db import Database, fetchone, scalar
from bot.store.expiry import ExpiredJobs, expire_jobs
from bot.store.privacy import ForgottenMember, forget_member


class SqliteMeta:
    """The `meta` table, the migrations' record, and the privacy scrubs across tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def schema_version(self) -> int:
        """The newest migration applied to this database."""
        async with self._db.read() as db:
            return int(await scalar(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def get(self, key: str) -> str | None:
        """A bot-wide value kept across restarts (e.g. the hash of the last command sync)."""
        async with self._db.read() as db:
            row = await fetchone(db, "SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set(self, key: str, value: str) -> None:
        """Keep a bot-wide value across restarts."""
        async with self._db.write() as db:
            await db.execute(
                "INSERT INTO meta (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (key, value, self._db.now()),
            )

    async def forget_member(self, guild_id: int, user_id: int) -> ForgottenMember:
        """Scrub the member's finished jobs in this server and anonymise their ledger rows,
        in one transaction; the caller deletes the files named in the answer."""
        async with self._db.write() as db:
            return await forget_member(db, self._db.now(), guild_id, user_id)

    async def expire_jobs(self, finished_before: int) -> ExpiredJobs:
        """Clear the prompts and personal data of jobs finished before this epoch second, in one
        transaction (the rows stay for the ledger); the caller deletes the files named."""
        async with self._db.write() as db:
            return await expire_jobs(db, self._db.now(), finished_before)
