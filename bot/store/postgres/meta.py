"""Bot-wide values, the schema version, and what the bot forgets on PostgreSQL: a member who
asks, and the personal data of jobs past the retention bound (the same rules as SQLite's
bot/store/privacy.py and bot/store/expiry.py)."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from bot.store.expiry import ExpiredJobs
from bot.store.jobs import TERMINAL_STATES, UNFINISHED_STATES, JobState
from bot.store.postgres.db import PgDatabase
from bot.store.postgres.rules import rows_changed
from bot.store.privacy import ANONYMOUS, ForgottenMember

# Passed as parameters (`= ANY($n)`), never spliced into the SQL.
_TERMINAL = sorted(state.value for state in TERMINAL_STATES)
_UNFINISHED = sorted(state.value for state in UNFINISHED_STATES)

# Forgetting: the member's job rows in this server, locked. A job of theirs that is ending at
# this moment either committed its ending first (and is seen here as ended, its settle or
# refund beside its reservation) or waits on its row until the forgetting has committed; so
# the jobs scrubbed, the ledger rows anonymised and the unfinished jobs counted all agree, as
# under SQLite's one writer. Ordered by id: two forgets of one member lock in the same order.
# NO KEY UPDATE, the lock an UPDATE of these rows takes, rather than FOR UPDATE: a new job
# naming one of them as its parent (a foreign key check, FOR KEY SHARE) neither waits for the
# forgetting nor, holding its reservation's totals rows meanwhile, deadlocks with it.
_LOCK_MEMBER_JOBS_SQL = """
SELECT id, state, ARRAY(SELECT jsonb_array_elements_text(input_hashes)), output_path
FROM jobs WHERE guild_id = $1 AND user_id = $2
ORDER BY id
FOR NO KEY UPDATE
"""
_SCRUB_MEMBER_JOBS_SQL = """
UPDATE jobs SET user_id = $1, request_json = '{}', input_hashes = '[]',
    interaction_id = NULL, interaction_token = NULL, token_expires_at = NULL,
    progress_message_id = NULL, result_message_id = NULL, video_url = NULL,
    output_path = NULL, output_size = NULL, seed = NULL, updated_at = $2
WHERE guild_id = $3 AND user_id = $4 AND state = ANY($5::text[])
"""
# The one UPDATE the ledger allows (migration 0002): the member's id out of their rows, and out
# of the rows they acted on; a grant's or reset's note (an admin's words about them) emptied.
# Rows of unfinished jobs stay theirs: their settle or refund must still match.
_ANONYMISE_LEDGER_SQL = """
UPDATE ledger SET user_id = $1,
    actor_id = CASE WHEN actor_id = $2 THEN $1 ELSE actor_id END,
    note = CASE WHEN job_id IS NULL THEN '' ELSE note END
WHERE guild_id = $3 AND user_id = $2 AND (job_id IS NULL OR job_id NOT IN
    (SELECT id FROM jobs WHERE state = ANY($4::text[])))
"""
_ANONYMISE_AUDIT_SQL = """
UPDATE audit SET details = jsonb_set(details, '{user_id}', to_jsonb($1::bigint))
WHERE guild_id = $2 AND details -> 'user_id' = to_jsonb($3::bigint)
"""

# Expiry: finished jobs past the bound that still hold something personal, cleared in one
# statement that returns what they held. SKIP LOCKED: a second process pruning at the same
# moment takes the rows the first has not, instead of waiting to find them cleared; a row
# being updated by anyone else is simply left for the next pass. NO KEY UPDATE, as forgetting
# takes: a new job referring to one of these rows as its parent does not make it skipped.
_EXPIRE_SQL = """
WITH expired AS (
    SELECT id, ARRAY(SELECT jsonb_array_elements_text(input_hashes)) AS hashes, output_path
    FROM jobs
    WHERE state = ANY($1::text[]) AND coalesce(finished_at, updated_at) < $2
      AND (request_json <> '{}' OR input_hashes <> '[]' OR interaction_token IS NOT NULL
           OR video_url IS NOT NULL OR output_path IS NOT NULL)
    FOR NO KEY UPDATE SKIP LOCKED
), cleared AS (
    UPDATE jobs SET request_json = '{}', input_hashes = '[]',
        interaction_id = NULL, interaction_token = NULL, token_expires_at = NULL,
        video_url = NULL, output_path = NULL, output_size = NULL, seed = NULL, updated_at = $3
    FROM expired WHERE jobs.id = expired.id
)
SELECT hashes, output_path FROM expired
"""

# Of these cached inputs, those some job still uses (run after the scrub, in its transaction).
_STILL_USED_SQL = """
SELECT DISTINCT used FROM jobs, jsonb_array_elements_text(jobs.input_hashes) AS used
WHERE used = ANY($1::text[])
"""


class PgMeta:
    """The `meta` table, the migrations' record, and the privacy scrubs across tables."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def schema_version(self) -> int:
        """The newest migration applied to this database."""
        return await self._db.schema_version()

    async def get(self, key: str) -> str | None:
        """A bot-wide value kept across restarts (e.g. the hash of the last command sync)."""
        async with self._db.read() as conn:
            value = await conn.fetchval("SELECT value FROM meta WHERE key = $1", key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str) -> None:
        """Keep a bot-wide value across restarts."""
        async with self._db.write() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value, updated_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                key,
                value,
                self._db.now(),
            )

    async def forget_member(self, guild_id: int, user_id: int) -> ForgottenMember:
        """Scrub the member's finished jobs in this server and anonymise their ledger rows,
        in one transaction; the caller deletes the files named in the answer.

        Job rows are kept (the ledger refers to them) but lose the member's id, prompts,
        inputs, links and files. Ledger rows keep their amounts, kinds, days and server, so
        every budget still adds up; only the member's id goes. Rows of unfinished jobs are
        left until those jobs end.
        """
        if user_id == ANONYMOUS:
            raise ValueError("user id 0 is the anonymous member; there is nothing to forget")
        async with self._db.write() as conn:
            now = self._db.now()
            jobs = await conn.fetch(_LOCK_MEMBER_JOBS_SQL, guild_id, user_id)
            ended = [job for job in jobs if JobState(job[1]).terminal]
            hashes = {str(sha) for job in ended for sha in job[2]}
            await conn.execute(_SCRUB_MEMBER_JOBS_SQL, ANONYMOUS, now, guild_id, user_id, _TERMINAL)
            ledger = await conn.execute(
                _ANONYMISE_LEDGER_SQL, ANONYMOUS, user_id, guild_id, _UNFINISHED
            )
            audit = await conn.execute(_ANONYMISE_AUDIT_SQL, ANONYMOUS, guild_id, user_id)
            orphaned = await _orphaned(conn, hashes)
        return ForgottenMember(
            guild_id=guild_id,
            user_id=user_id,
            job_ids=tuple(str(job[0]) for job in ended),
            output_paths=tuple(str(job[3]) for job in ended if job[3]),
            orphaned_inputs=orphaned,
            ledger_rows=rows_changed(ledger),
            audit_rows=rows_changed(audit),
            unfinished=len(jobs) - len(ended),
        )

    async def expire_jobs(self, finished_before: int) -> ExpiredJobs:
        """Clear the prompts and personal data of jobs finished before this epoch second, in one
        transaction (the rows stay for the ledger); the caller deletes the files named.

        Kept: the ids, the server, channel and member (the member's own history), mode, cost,
        state, times and error, so nothing the ledger or a budget reads changes. Unfinished
        jobs are never touched.
        """
        async with self._db.write() as conn:
            rows = await conn.fetch(_EXPIRE_SQL, _TERMINAL, finished_before, self._db.now())
            if not rows:
                return ExpiredJobs(jobs=0, output_paths=(), orphaned_inputs=())
            hashes = {str(sha) for row in rows for sha in row[0]}
            orphaned = await _orphaned(conn, hashes)
        return ExpiredJobs(
            jobs=len(rows),
            output_paths=tuple(str(row[1]) for row in rows if row[1]),
            orphaned_inputs=orphaned,
        )


async def _orphaned(conn: asyncpg.Connection, hashes: Iterable[str]) -> tuple[str, ...]:
    """Of these cached inputs, those no job uses any more, sorted."""
    wanted = sorted(set(hashes))
    if not wanted:
        return ()
    still_used = {str(row[0]) for row in await conn.fetch(_STILL_USED_SQL, wanted)}
    return tuple(sha for sha in wanted if sha not in still_used)
