"""Jobs on PostgreSQL: the table group that accepts a job with its reservation, moves it by
compare-and-set and reads it, with the same Job rows and semantics as SQLite's (bot/store/jobs.py).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, Unpack

import asyncpg

from bot.store.jobs import (
    CHANGEABLE_COLUMNS,
    STATE_TIMESTAMPS,
    TERMINAL_STATES,
    UNFINISHED_STATES,
    Job,
    JobChanges,
    JobState,
    NewJob,
    new_job_id,
)
from bot.store.ledger import ENDINGS, LedgerKind
from bot.store.postgres.db import PgDatabase
from bot.store.postgres.ledger import (
    append,
    end_reservation,
    lock_day,
    lock_guild_day,
    lock_member_day,
)
from bot.store.reservation import QuotaLimits, QuotaTotals, check_reservation

# The class half of the two-key advisory lock a member's reservations take ("pika" in ASCII);
# the two-key space never overlaps the one-key space the migrations' lock lives in.
MEMBER_JOBS_LOCK = 0x70696B61

_UNFINISHED = sorted(state.value for state in UNFINISHED_STATES)
_ENDED_UNTOLD = sorted(
    state.value for state in (JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN)
)

# PostgreSQL has no rowid: jobs created in the same second keep the order they were accepted
# in through their reservation's ledger id (an identity, one per job by ledger_one_reserve).
_ACCEPTED = "(SELECT l.id FROM ledger AS l WHERE l.job_id = jobs.id AND l.kind = 'reserve')"
_OLDEST_FIRST = f"ORDER BY created_at, {_ACCEPTED}, id"
_NEWEST_FIRST = f"ORDER BY created_at DESC, {_ACCEPTED} DESC NULLS LAST, id DESC"

_BLOCKED_AND_UNFINISHED_SQL = """
SELECT
    EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = $1 AND user_id = $2),
    (SELECT count(*) FROM jobs WHERE user_id = $2 AND state = ANY($3::text[]))
"""

_INSERT_JOB_SQL = """
INSERT INTO jobs (id, created_at, updated_at, state, mode, endpoint_id, request_json, input_hashes,
    cost, guild_id, channel_id, user_id, interaction_id, interaction_token, token_expires_at, seed,
    parent_job_id, upload_limit)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (id) DO NOTHING
RETURNING *
"""


def job_of(row: Any) -> Job:
    """A Job from a `SELECT * FROM jobs` row (jsonb columns arrive as their JSON text)."""
    return Job.from_row(row)


class PgJobs:
    """The `jobs` table: accepting a job with its reservation, moving it, and reading it."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def create(
        self,
        new_job: NewJob,
        *,
        cost: int,
        allowance: int,
        guild_budget: int,
        global_budget: int,
        max_unfinished: int,
        period: str,
        actor_id: int,
    ) -> Job:
        """Accept a job: check every limit and write the job and its reservation, atomically.

        Raises a QuotaExceeded subclass (and writes nothing) when the member is blocked, has
        `max_unfinished` unfinished jobs already, or when `cost` would pass what the member has
        left today, the server's budget or the global budget for `period`.

        How several processes reserving at the same instant stay within every limit: READ
        COMMITTED plus row locks on exactly what the decision reads, held to the commit.

        1. A transaction advisory lock on the member: their unfinished jobs span servers and
           days, so no totals row covers them; this lock serialises the member's own creates.
        2. The member's, the server's and the day's totals rows, locked by upsert in that
           order. It is the order the ledger's triggers (migration 0003) update them in for
           every other ledger row (endings, grants), so no two writers wait on each other in a
           cycle: no deadlock. Each lock returns the row as its last holder committed it.
        3. The rule (check_reservation) on those totals, then the job and its reservation; the
           reservation's trigger moves the locked rows, and the commit releases them.

        Reservations that compete for one budget run one after another on its row; the rest
        go on. Chosen over SERIALIZABLE: every reservation of a day reads the day's row, so
        under SERIALIZABLE nearly all concurrent ones would fail and have to be retried, while
        a lock queue lets each through at the first try.
        """
        if cost < 0:
            raise ValueError(f"cost must not be negative, not {cost}")
        guild_id, user_id = new_job.guild_id, new_job.user_id
        limits = QuotaLimits(
            allowance=allowance,
            max_unfinished=max_unfinished,
            guild_budget=guild_budget,
            global_budget=global_budget,
        )
        async with self._db.write() as conn:
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2::bigint::text))",
                MEMBER_JOBS_LOCK,
                user_id,
            )
            day = await lock_member_day(conn, period, guild_id, user_id)
            guild_spent = await lock_guild_day(conn, period, guild_id)
            global_spent = await lock_day(conn, period)
            # After the locks: a new statement sees every create that committed before them.
            blocked, unfinished = await conn.fetchrow(
                _BLOCKED_AND_UNFINISHED_SQL, guild_id, user_id, _UNFINISHED
            )
            totals = QuotaTotals(
                blocked=bool(blocked),
                unfinished=int(unfinished),
                day=day,
                guild_spent=guild_spent,
                global_spent=global_spent,
            )
            check_reservation(totals, limits, cost=cost)

            now = self._db.now()
            job_row = None
            while job_row is None:
                # 40 random bits make a clash rare, not impossible: on one, draw another id.
                job_row = await conn.fetchrow(
                    _INSERT_JOB_SQL,
                    new_job_id(),
                    now,
                    now,
                    JobState.QUEUED.value,
                    str(new_job.mode),
                    new_job.endpoint_id,
                    new_job.request_json,
                    json.dumps(list(new_job.input_hashes)),
                    cost,
                    guild_id,
                    new_job.channel_id,
                    user_id,
                    new_job.interaction_id,
                    new_job.interaction_token,
                    new_job.token_expires_at,
                    new_job.seed,
                    new_job.parent_job_id,
                    new_job.upload_limit,
                )
            job = job_of(job_row)
            await append(
                conn, now, period, guild_id, user_id, job.id, LedgerKind.RESERVE, cost, actor_id, ""
            )
        return job

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        async with self._db.read() as conn:
            row = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        return None if row is None else job_of(row)

    async def unfinished(self) -> list[Job]:
        """Every job not yet in a terminal state, oldest first: what a restart must resume."""
        async with self._db.read() as conn:
            rows = await conn.fetch(
                f"SELECT * FROM jobs WHERE state = ANY($1::text[]) {_OLDEST_FIRST}",  # noqa: S608
                _UNFINISHED,
            )
        return [job_of(row) for row in rows]

    async def untold_endings(self, *, since: int) -> list[Job]:
        """Jobs that ended without a video since `since` whose member was never told why."""
        async with self._db.read() as conn:
            rows = await conn.fetch(
                "SELECT * FROM jobs WHERE state = ANY($1::text[]) "  # noqa: S608
                f"AND told_at IS NULL AND finished_at >= $2 ORDER BY finished_at, {_ACCEPTED}, id",
                _ENDED_UNTOLD,
                since,
            )
        return [job_of(row) for row in rows]

    async def count_unfinished(self, user_id: int) -> int:
        """How many of the member's jobs (in any server) are waiting or running."""
        async with self._db.read() as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM jobs WHERE user_id = $1 AND state = ANY($2::text[])",
                    user_id,
                    _UNFINISHED,
                )
            )

    async def recent(
        self, user_id: int, *, guild_id: int | None = None, limit: int = 10
    ) -> list[Job]:
        """The member's newest jobs, newest first; only in `guild_id` when given."""
        async with self._db.read() as conn:
            rows = await conn.fetch(
                "SELECT * FROM jobs WHERE user_id = $1 "  # noqa: S608
                f"AND ($2::bigint IS NULL OR guild_id = $2) {_NEWEST_FIRST} LIMIT $3",
                user_id,
                guild_id,
                limit,
            )
        return [job_of(row) for row in rows]

    async def newest_unfinished(self, user_id: int, *, guild_id: int | None = None) -> Job | None:
        """The member's newest job still waiting or running (what /pika cancel picks)."""
        async with self._db.read() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM jobs WHERE user_id = $1 "  # noqa: S608
                "AND ($2::bigint IS NULL OR guild_id = $2) AND state = ANY($3::text[]) "
                f"{_NEWEST_FIRST} LIMIT 1",
                user_id,
                guild_id,
                _UNFINISHED,
            )
        return None if row is None else job_of(row)

    async def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        expected: Collection[JobState],
        **changes: Unpack[JobChanges],
    ) -> bool:
        """Move the job to `to` only if it is in one of `expected`; return whether it moved.

        The compare-and-set is one UPDATE: under READ COMMITTED a second racer waits for the
        first's row lock, then re-checks the state on the row the first committed and finds
        it moved, so only one of them moves the job. Entering submitted, running, completed
        or a terminal state stamps its timestamp column (unless given or already set).
        """
        async with self._db.write() as conn:
            return await self._transition(conn, job_id, to, expected, changes)

    async def finish(
        self,
        job_id: str,
        to: JobState,
        *,
        expected: Collection[JobState],
        outcome: LedgerKind | None,
        actor_id: int = 0,
        note: str = "",
        **changes: Unpack[JobChanges],
    ) -> bool:
        """Move the job to terminal state `to` and settle or refund it, in one transaction.

        `outcome` is LedgerKind.SETTLE, LedgerKind.REFUND, LedgerKind.WRITE_OFF (the member
        gets the credits back, but fal may have billed the run, so it keeps counting in the
        server's and the day's spend), or None to leave the reservation held. Nothing happens,
        and False is returned, when the job was not in one of `expected`.
        """
        if to not in TERMINAL_STATES:
            raise ValueError(f"finish_job needs a terminal state, not {to}")
        if outcome not in (None, *ENDINGS):
            raise ValueError(f"a job ends with a settle, a refund or a write-off, not {outcome}")
        async with self._db.write() as conn:
            moved = await self._transition(conn, job_id, to, expected, changes)
            if moved and outcome is not None:
                await end_reservation(conn, self._db.now(), job_id, outcome, actor_id, note)
            return moved

    async def update(self, job_id: str, **changes: Unpack[JobChanges]) -> bool:
        """Set some of a job's changeable columns without changing its state."""
        if not changes:
            return await self.get(job_id) is not None
        assignments, params = _assignments(changes, first=2)
        async with self._db.write() as conn:
            status = await conn.execute(
                f"UPDATE jobs SET updated_at = $1, {assignments} "  # noqa: S608
                f"WHERE id = ${len(params) + 2}",
                self._db.now(),
                *params,
                job_id,
            )
        return bool(status == "UPDATE 1")

    async def _transition(
        self,
        conn: asyncpg.Connection,
        job_id: str,
        to: JobState,
        expected: Collection[JobState],
        changes: Mapping[str, Any],
    ) -> bool:
        if not expected:
            raise ValueError("expected must name at least one state")
        now = self._db.now()
        # $1 state, $2 updated_at, then the changes, the stamp, the id and the expected states.
        assignments, params = _assignments(changes, first=3)
        sets = ["state = $1", "updated_at = $2"]
        if assignments:
            sets.append(assignments)
        stamp = STATE_TIMESTAMPS.get(to)
        if stamp is not None and stamp not in changes:
            params.append(now)
            sets.append(f"{stamp} = coalesce({stamp}, ${len(params) + 2})")
        states = sorted(JobState(state).value for state in expected)
        where = f"id = ${len(params) + 3} AND state = ANY(${len(params) + 4}::text[])"
        status = await conn.execute(
            f"UPDATE jobs SET {', '.join(sets)} WHERE {where}",  # noqa: S608
            to.value,
            now,
            *params,
            job_id,
            states,
        )
        return bool(status == "UPDATE 1")

    async def counts(self) -> dict[tuple[str, str], int]:
        """How many jobs there are by (mode, state), for the operator's metrics."""
        async with self._db.read() as conn:
            rows = await conn.fetch("SELECT mode, state, count(*) FROM jobs GROUP BY mode, state")
        return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}

    async def failure_counts(self, guild_id: int, *, since: int) -> dict[str, int]:
        """How many of the server's jobs failed since `since`, by error code."""
        async with self._db.read() as conn:
            rows = await conn.fetch(
                "SELECT coalesce(error_code, 'unknown'), count(*) FROM jobs "
                "WHERE guild_id = $1 AND state = 'failed' AND finished_at >= $2 "
                "GROUP BY 1 ORDER BY 2 DESC",
                guild_id,
                since,
            )
        return {str(r[0]): int(r[1]) for r in rows}


def _assignments(changes: Mapping[str, Any], *, first: int) -> tuple[str, list[object]]:
    """`name = $n, ...` for the changes, numbered from `first`, and their values."""
    unknown = set(changes) - CHANGEABLE_COLUMNS
    if unknown:
        raise ValueError(f"these job columns cannot be changed: {sorted(unknown)}")
    # Column names come from the fixed whitelist above, never from user input.
    names = sorted(changes)
    params: list[object] = [_sql_value(changes[name]) for name in names]
    return ", ".join(f"{name} = ${first + i}" for i, name in enumerate(names)), params


def _sql_value(value: object) -> object:
    if isinstance(value, str):
        return str(value)  # a StrEnum member becomes its plain value
    return value
