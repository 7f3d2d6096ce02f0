"""The retention bound on jobs: a job finished long enough ago loses its prompts and personal data.

The row itself stays: the append-only ledger refers to it, and the member's history, the server's
usage and every budget still add up from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiosqlite

from bot.store.jobs import TERMINAL_STATES
from bot.store.privacy import inputs_still_used

# A constant SQL fragment built from the state enum (no user input ever reaches it).
_TERMINAL_SQL = ", ".join(f"'{state.value}'" for state in sorted(TERMINAL_STATES))
_EXPIRED_SQL = (
    f"state IN ({_TERMINAL_SQL}) AND COALESCE(finished_at, updated_at) < ? "
    "AND (request_json != '{}' OR input_hashes != '[]' OR interaction_token IS NOT NULL "
    "OR video_url IS NOT NULL OR output_path IS NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class ExpiredJobs:
    """What one pass cleared: how many jobs, and the files the caller must delete.

    `output_paths`: the jobs' downloaded videos; `orphaned_inputs`: cached inputs no remaining
    job uses.
    """

    jobs: int
    output_paths: tuple[str, ...]
    orphaned_inputs: tuple[str, ...]


async def expire_jobs(db: aiosqlite.Connection, now: int, finished_before: int) -> ExpiredJobs:
    """Clear what a job finished before `finished_before` kept of its member's request.

    Runs inside the caller's write transaction. Cleared: the request (prompts, negative prompt,
    every parameter), the inputs, the interaction id and token, the video's link and file, the
    seed. Kept: the ids, the server, channel and member (the member's own history), mode, cost,
    state, times and error, so nothing the ledger or a budget reads changes. Unfinished jobs are
    never touched.
    """
    async with db.execute(
        f"SELECT id, input_hashes, output_path FROM jobs WHERE {_EXPIRED_SQL}",  # noqa: S608
        (finished_before,),
    ) as cursor:
        rows = list(await cursor.fetchall())
    if not rows:
        return ExpiredJobs(jobs=0, output_paths=(), orphaned_inputs=())
    hashes = {str(sha) for row in rows for sha in json.loads(row[1])}
    outputs = tuple(str(row[2]) for row in rows if row[2])
    updated = await db.execute(
        "UPDATE jobs SET request_json = '{}', input_hashes = '[]', "  # noqa: S608
        "interaction_id = NULL, interaction_token = NULL, token_expires_at = NULL, "
        "video_url = NULL, output_path = NULL, output_size = NULL, seed = NULL, updated_at = ? "
        f"WHERE {_EXPIRED_SQL}",
        (now, finished_before),
    )
    still_used = await inputs_still_used(db, hashes)
    return ExpiredJobs(
        jobs=max(0, updated.rowcount),
        output_paths=outputs,
        orphaned_inputs=tuple(sorted(hashes - still_used)),
    )
