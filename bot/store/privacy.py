"""Forgetting a member on request: their finished jobs scrubbed, their ledger rows anonymised."""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiosqlite

from bot.store.jobs import TERMINAL_STATES, UNFINISHED_STATES

# Constant SQL fragments built from the state enums (no user input ever reaches them).
_TERMINAL_SQL = ", ".join(f"'{state.value}'" for state in sorted(TERMINAL_STATES))
_UNFINISHED_SQL = ", ".join(f"'{state.value}'" for state in sorted(UNFINISHED_STATES))
ANONYMOUS = 0


@dataclass(frozen=True, slots=True)
class ForgottenMember:
    """What forgetting a member changed in the database, and the files the caller must delete.

    `orphaned_inputs`: cached inputs no remaining job uses; `output_paths`: downloaded videos
    of the forgotten jobs; `unfinished`: jobs still running, left alone (ask again later).
    """

    guild_id: int
    user_id: int
    job_ids: tuple[str, ...]
    output_paths: tuple[str, ...]
    orphaned_inputs: tuple[str, ...]
    ledger_rows: int
    audit_rows: int
    unfinished: int


async def forget_member(
    db: aiosqlite.Connection, now: int, guild_id: int, user_id: int
) -> ForgottenMember:
    """Scrub the member's finished jobs in this server and anonymise their ledger rows.

    Runs inside the caller's write transaction. Job rows are kept (the ledger refers to them)
    but lose the member's id, prompts, inputs, links and files. Ledger rows keep their amounts,
    kinds, days and server, so every budget still adds up; only the member's id goes. Rows of
    unfinished jobs are left until those jobs end: their settle or refund must still match.
    """
    if user_id == ANONYMOUS:
        raise ValueError("user id 0 is the anonymous member; there is nothing to forget")
    select = (
        "SELECT id, input_hashes, output_path FROM jobs "  # noqa: S608
        f"WHERE guild_id = ? AND user_id = ? AND state IN ({_TERMINAL_SQL})"
    )
    async with db.execute(select, (guild_id, user_id)) as cursor:
        rows = list(await cursor.fetchall())
    job_ids = tuple(str(row[0]) for row in rows)
    hashes = {str(sha) for row in rows for sha in json.loads(row[1])}
    outputs = tuple(str(row[2]) for row in rows if row[2])

    await db.execute(
        "UPDATE jobs SET user_id = ?, request_json = '{}', input_hashes = '[]', "  # noqa: S608
        "interaction_id = NULL, interaction_token = NULL, token_expires_at = NULL, "
        "progress_message_id = NULL, result_message_id = NULL, video_url = NULL, "
        "output_path = NULL, output_size = NULL, seed = NULL, updated_at = ? "
        f"WHERE guild_id = ? AND user_id = ? AND state IN ({_TERMINAL_SQL})",
        (ANONYMOUS, now, guild_id, user_id),
    )
    ledger = await db.execute(
        "UPDATE ledger SET user_id = ?, "  # noqa: S608
        "actor_id = CASE WHEN actor_id = ? THEN ? ELSE actor_id END, "
        "note = CASE WHEN job_id IS NULL THEN '' ELSE note END "
        "WHERE guild_id = ? AND user_id = ? AND (job_id IS NULL OR job_id NOT IN "
        f"(SELECT id FROM jobs WHERE state IN ({_UNFINISHED_SQL})))",
        (ANONYMOUS, user_id, ANONYMOUS, guild_id, user_id),
    )
    audit = await db.execute(
        "UPDATE audit SET details = json_set(details, '$.user_id', ?) "
        "WHERE guild_id = ? AND json_extract(details, '$.user_id') = ?",
        (ANONYMOUS, guild_id, user_id),
    )
    async with db.execute(
        f"SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? "  # noqa: S608
        f"AND state IN ({_UNFINISHED_SQL})",
        (guild_id, user_id),
    ) as cursor:
        row = await cursor.fetchone()
    unfinished = int(row[0]) if row is not None else 0

    still_used = await inputs_still_used(db, hashes)
    return ForgottenMember(
        guild_id=guild_id,
        user_id=user_id,
        job_ids=job_ids,
        output_paths=outputs,
        orphaned_inputs=tuple(sorted(hashes - still_used)),
        ledger_rows=max(0, ledger.rowcount),
        audit_rows=max(0, audit.rowcount),
        unfinished=unfinished,
    )


async def inputs_still_used(db: aiosqlite.Connection, hashes: set[str]) -> set[str]:
    """Which of these cached inputs some job still names (the others can be deleted)."""
    if not hashes:
        return set()
    marks = ", ".join("?" for _ in hashes)
    async with db.execute(
        "SELECT DISTINCT used.value FROM jobs, json_each(jobs.input_hashes) AS used "  # noqa: S608
        f"WHERE used.value IN ({marks})",
        tuple(sorted(hashes)),
    ) as cursor:
        return {str(r[0]) for r in await cursor.fetchall()}
