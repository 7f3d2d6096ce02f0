"""Jobs: a job row, its states, the fields a new job starts with and the fields that change, and
the table group that accepts, moves and reads jobs."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict, Unpack

import aiosqlite

from bot.store.db import Database, fetchone, scalar
from bot.store.ledger import (
    ENDINGS,
    INSERT_LEDGER_SQL,
    TOTALS_SQL,
    DayTotals,
    LedgerKind,
    end_reservation,
)
from bot.store.reservation import QuotaLimits, QuotaTotals, check_reservation

# Lowercase RFC 4648 base32: no 0/1/8/9, so ids read aloud or typed back are hard to confuse.
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
JOB_ID_LENGTH = 8


def new_job_id() -> str:
    """A fresh random job id: 8 base32 characters (40 bits), not guessable from other ids."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(JOB_ID_LENGTH))


class JobState(StrEnum):
    """Where a job is in its life (PRODUCT.md §2); the runner drives the transitions."""

    QUEUED = "queued"  # written, waiting in the bot's own queue
    SUBMITTING = (
        "submitting"  # about to be sent to fal: if the bot dies here the outcome is unknown
    )
    SUBMITTED = "submitted"  # fal accepted it: request id and URLs stored; in fal's queue
    RUNNING = "running"  # IN_PROGRESS at fal
    COMPLETED = "completed"  # fal said COMPLETED; result not fetched yet
    DOWNLOADED = "downloaded"  # the video is on disk
    DELIVERED = "delivered"  # posted to Discord
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # the bot died mid-submission: fal may or may not have the job

    @property
    def terminal(self) -> bool:
        """Whether the job can no longer change state."""
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN}
)
UNFINISHED_STATES: frozenset[JobState] = frozenset(JobState) - TERMINAL_STATES


class DeliveryPath(StrEnum):
    """How the finished video reached the member."""

    CHANNEL = "channel"  # uploaded to the channel of the command
    DM = "dm"  # the channel refused; sent by direct message
    LINK = "link"  # too large to upload: posted as a link
    KEPT = "kept"  # nowhere to post it: kept on disk for /pika job


@dataclass(frozen=True, slots=True)
class NewJob:
    """What the command layer knows about a job before it is accepted."""

    mode: str
    endpoint_id: str
    request_json: str  # the validated request, as JSON text that rebuilds it after a restart
    guild_id: int
    channel_id: int
    user_id: int
    input_hashes: Sequence[str] = ()
    interaction_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)
    token_expires_at: int | None = None
    seed: int | None = None
    parent_job_id: str | None = None
    upload_limit: int | None = None

    def __post_init__(self) -> None:
        try:
            parsed = json.loads(self.request_json)
        except ValueError as exc:
            raise ValueError(f"request_json is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ValueError("request_json must hold a JSON object")


class JobChanges(TypedDict, total=False):
    """Columns a job's update may set; anything else about a job is fixed at creation."""

    interaction_token: str | None
    token_expires_at: int | None
    progress_message_id: int | None
    result_message_id: int | None
    fal_request_id: str | None
    status_url: str | None
    response_url: str | None
    cancel_url: str | None
    fal_queue_position: int | None
    submitted_at: int | None
    started_at: int | None
    completed_at: int | None
    finished_at: int | None
    video_url: str | None
    output_path: str | None
    output_size: int | None
    error: str | None
    error_code: str | None
    seed: int | None
    delivery_path: DeliveryPath | None
    told_at: int | None


CHANGEABLE_COLUMNS: frozenset[str] = frozenset(JobChanges.__annotations__)

# The timestamp a state stamps on the job when it is entered (unless the caller gives one).
STATE_TIMESTAMPS: Mapping[JobState, str] = {
    JobState.SUBMITTED: "submitted_at",
    JobState.RUNNING: "started_at",
    JobState.COMPLETED: "completed_at",
    **{state: "finished_at" for state in TERMINAL_STATES},
}


@dataclass(frozen=True, slots=True)
class Job:
    """One job row, as stored."""

    id: str
    created_at: int
    updated_at: int
    state: JobState
    mode: str
    endpoint_id: str
    request_json: str
    input_hashes: tuple[str, ...]
    cost: int
    guild_id: int
    channel_id: int
    user_id: int
    interaction_id: int | None
    interaction_token: str | None = field(repr=False)
    token_expires_at: int | None
    progress_message_id: int | None
    result_message_id: int | None
    fal_request_id: str | None
    status_url: str | None
    response_url: str | None
    cancel_url: str | None
    fal_queue_position: int | None
    submitted_at: int | None
    started_at: int | None
    completed_at: int | None
    finished_at: int | None
    video_url: str | None
    output_path: str | None
    output_size: int | None
    error: str | None
    error_code: str | None
    seed: int | None
    parent_job_id: str | None
    delivery_path: DeliveryPath | None
    upload_limit: int | None
    told_at: int | None

    @property
    def request(self) -> dict[str, Any]:
        """The stored request, parsed."""
        parsed: dict[str, Any] = json.loads(self.request_json)
        return parsed

    @property
    def terminal(self) -> bool:
        """Whether the job has reached an end state."""
        return self.state.terminal

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        """Build a Job from a `SELECT * FROM jobs` row."""
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["state"] = JobState(values["state"])
        values["input_hashes"] = tuple(json.loads(values["input_hashes"]))
        if values["delivery_path"] is not None:
            values["delivery_path"] = DeliveryPath(values["delivery_path"])
        return cls(**values)


# Constant SQL fragments for the unfinished states (no user input ever reaches them).
UNFINISHED_SQL = ", ".join(f"'{state.value}'" for state in sorted(UNFINISHED_STATES))

# Every total a reservation checks, in one statement: one round trip to the database's thread.
RESERVE_CHECKS_SQL = f"""
SELECT
    EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = :guild AND user_id = :user),
    (SELECT COUNT(*) FROM jobs WHERE user_id = :user AND state IN ({UNFINISHED_SQL})),
    totals.*
FROM ({TOTALS_SQL}) AS totals
"""  # noqa: S608

INSERT_JOB_SQL = """
INSERT INTO jobs (id, created_at, updated_at, state, mode, endpoint_id, request_json, input_hashes,
    cost, guild_id, channel_id, user_id, interaction_id, interaction_token, token_expires_at, seed,
    parent_job_id, upload_limit)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
RETURNING *
"""


def quota_totals(row: Sequence[Any]) -> QuotaTotals:
    """The totals of a RESERVE_CHECKS_SQL row."""
    blocked, unfinished, *sums, guild_spent, global_spent = (int(v) for v in row)
    return QuotaTotals(
        blocked=bool(blocked),
        unfinished=unfinished,
        day=DayTotals(*sums),
        guild_spent=guild_spent,
        global_spent=global_spent,
    )


class SqliteJobs:
    """The `jobs` table: accepting a job with its reservation, moving it, and reading it."""

    def __init__(self, db: Database) -> None:
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
        async with self._db.write() as db:
            rows = await db.execute_fetchall(
                RESERVE_CHECKS_SQL, {"guild": guild_id, "user": user_id, "period": period}
            )
            check_reservation(quota_totals(next(iter(rows))), limits, cost=cost)

            now = self._db.now()
            job_row = None
            while job_row is None:
                # 40 random bits make a clash rare, not impossible: on one, draw another id.
                inserted = await db.execute_fetchall(
                    INSERT_JOB_SQL,
                    (
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
                    ),
                )
                job_row = next(iter(inserted), None)
            job = Job.from_row(job_row)
            # Fetched to the end: a RETURNING statement left half-read blocks the COMMIT.
            await db.execute_fetchall(
                INSERT_LEDGER_SQL,
                (
                    now,
                    period,
                    guild_id,
                    user_id,
                    job.id,
                    LedgerKind.RESERVE.value,
                    cost,
                    actor_id,
                    "",
                ),
            )
        return job

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        async with self._db.read() as db:
            row = await fetchone(db, "SELECT * FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else Job.from_row(row)

    async def unfinished(self) -> list[Job]:
        """Every job not yet in a terminal state, oldest first: what a restart must resume."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(
                f"SELECT * FROM jobs WHERE state IN ({UNFINISHED_SQL}) "  # noqa: S608
                "ORDER BY created_at, rowid"
            )
        return [Job.from_row(row) for row in rows]

    async def untold_endings(self, *, since: int) -> list[Job]:
        """Jobs that ended without a video since `since` whose member was never told why."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(
                "SELECT * FROM jobs WHERE state IN ('failed', 'cancelled', 'unknown') "
                "AND told_at IS NULL AND finished_at >= ? ORDER BY finished_at, rowid",
                (since,),
            )
        return [Job.from_row(row) for row in rows]

    async def count_unfinished(self, user_id: int) -> int:
        """How many of the member's jobs (in any server) are waiting or running."""
        async with self._db.read() as db:
            return int(
                await scalar(
                    db,
                    f"SELECT COUNT(*) FROM jobs WHERE user_id = ? AND state IN ({UNFINISHED_SQL})",  # noqa: S608
                    (user_id,),
                )
            )

    async def recent(
        self, user_id: int, *, guild_id: int | None = None, limit: int = 10
    ) -> list[Job]:
        """The member's newest jobs, newest first; only in `guild_id` when given."""
        async with self._db.read() as db:
            if guild_id is None:
                rows = await db.execute_fetchall(
                    "SELECT * FROM jobs WHERE user_id = ? "
                    "ORDER BY created_at DESC, rowid DESC LIMIT ?",
                    (user_id, limit),
                )
            else:
                rows = await db.execute_fetchall(
                    "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ? "
                    "ORDER BY created_at DESC, rowid DESC LIMIT ?",
                    (guild_id, user_id, limit),
                )
        return [Job.from_row(row) for row in rows]

    async def newest_unfinished(self, user_id: int, *, guild_id: int | None = None) -> Job | None:
        """The member's newest job still waiting or running (what /pika cancel picks)."""
        async with self._db.read() as db:
            if guild_id is None:
                rows = await db.execute_fetchall(
                    f"SELECT * FROM jobs WHERE user_id = ? AND state IN ({UNFINISHED_SQL}) "  # noqa: S608
                    "ORDER BY created_at DESC, rowid DESC LIMIT 1",
                    (user_id,),
                )
            else:
                rows = await db.execute_fetchall(
                    "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ? "  # noqa: S608
                    f"AND state IN ({UNFINISHED_SQL}) "
                    "ORDER BY created_at DESC, rowid DESC LIMIT 1",
                    (guild_id, user_id),
                )
        found = list(rows)
        return Job.from_row(found[0]) if found else None

    async def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        expected: Collection[JobState],
        **changes: Unpack[JobChanges],
    ) -> bool:
        """Move the job to `to` only if it is in one of `expected`; return whether it moved.

        This compare-and-set is what keeps a resumed job from being submitted or delivered
        twice: of two racers, only the first finds the job still in the expected state.
        Entering submitted, running, completed or a terminal state stamps its timestamp
        column (unless given in `changes` or already set).
        """
        async with self._db.write() as db:
            return await self._transition(db, job_id, to, expected, changes)

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
        async with self._db.write() as db:
            moved = await self._transition(db, job_id, to, expected, changes)
            if moved and outcome is not None:
                await end_reservation(db, self._db.now(), job_id, outcome, actor_id, note)
            return moved

    async def update(self, job_id: str, **changes: Unpack[JobChanges]) -> bool:
        """Set some of a job's changeable columns without changing its state."""
        if not changes:
            return await self.get(job_id) is not None
        assignments, params = _assignments(changes)
        async with self._db.write() as db:
            cursor = await db.execute(
                f"UPDATE jobs SET updated_at = ?, {assignments} WHERE id = ?",  # noqa: S608
                (self._db.now(), *params, job_id),
            )
            return bool(cursor.rowcount == 1)

    async def _transition(
        self,
        db: aiosqlite.Connection,
        job_id: str,
        to: JobState,
        expected: Collection[JobState],
        changes: Mapping[str, Any],
    ) -> bool:
        if not expected:
            raise ValueError("expected must name at least one state")
        now = self._db.now()
        assignments, params = _assignments(changes)
        stamp = STATE_TIMESTAMPS.get(to)
        extra = ""
        if stamp is not None and stamp not in changes:
            extra = f", {stamp} = COALESCE({stamp}, ?)"
            params.append(now)
        sets = f"state = ?, updated_at = ?{', ' + assignments if assignments else ''}{extra}"
        states = sorted(JobState(state).value for state in expected)
        placeholders = ", ".join("?" for _ in states)
        cursor = await db.execute(
            f"UPDATE jobs SET {sets} WHERE id = ? AND state IN ({placeholders})",  # noqa: S608
            (to.value, now, *params, job_id, *states),
        )
        return bool(cursor.rowcount == 1)

    async def counts(self) -> dict[tuple[str, str], int]:
        """How many jobs there are by (mode, state), for the operator's metrics."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(
                "SELECT mode, state, COUNT(*) FROM jobs GROUP BY mode, state"
            )
        return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}

    async def failure_counts(self, guild_id: int, *, since: int) -> dict[str, int]:
        """How many of the server's jobs failed since `since`, by error code."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(
                "SELECT COALESCE(error_code, 'unknown'), COUNT(*) FROM jobs "
                "WHERE guild_id = ? AND state = 'failed' AND finished_at >= ? "
                "GROUP BY 1 ORDER BY 2 DESC",
                (guild_id, since),
            )
        return {str(r[0]): int(r[1]) for r in rows}


def _assignments(changes: Mapping[str, Any]) -> tuple[str, list[object]]:
    unknown = set(changes) - CHANGEABLE_COLUMNS
    if unknown:
        raise ValueError(f"these job columns cannot be changed: {sorted(unknown)}")
    # Column names come from the fixed whitelist above, never from user input.
    names = sorted(changes)
    params: list[object] = [_sql_value(changes[name]) for name in names]
    return ", ".join(f"{name} = ?" for name in names), params


def _sql_value(value: object) -> object:
    if isinstance(value, str):
        return str(value)  # a StrEnum member becomes its plain value
    return value
