"""The bot's SQLite database: jobs, the credit ledger, limits, server settings, audit and meta."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Unpack

import aiosqlite

from bot.store.errors import (
    AllowanceExceeded,
    GlobalBudgetExceeded,
    GuildBudgetExceeded,
    MemberBlocked,
    TooManyJobs,
)
from bot.store.expiry import ExpiredJobs, expire_jobs
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
from bot.store.ledger import (
    ENDINGS,
    Balance,
    DaySpend,
    DayTotals,
    LedgerEntry,
    LedgerKind,
    MemberSpend,
)
from bot.store.privacy import ForgottenMember, forget_member
from bot.store.schema import Migration, apply_migrations, bundled_migrations
from bot.store.settings import AuditEntry, Block, Glance, GuildSettings

Clock = Callable[[], float]

# Constant SQL fragments for the unfinished states (no user input ever reaches them).
_UNFINISHED_SQL = ", ".join(f"'{state.value}'" for state in sorted(UNFINISHED_STATES))

# Per-role and per-member allowances; table and column names come from this literal tuple.
_LIMIT_TABLES = (("role", "role_limits", "role_id"), ("member", "member_limits", "user_id"))
_LIMIT_SUBJECT = {kind: column for kind, _, column in _LIMIT_TABLES}
_DELETE_LIMIT_SQL = {
    kind: f"DELETE FROM {table} WHERE guild_id = ? AND {column} = ?"  # noqa: S608
    for kind, table, column in _LIMIT_TABLES
}
_SET_LIMIT_SQL = {
    kind: f"""INSERT INTO {table} (guild_id, {column}, allowance, actor_id, updated_at)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (guild_id, {column}) DO UPDATE SET allowance = excluded.allowance,
            actor_id = excluded.actor_id, updated_at = excluded.updated_at"""  # noqa: S608
    for kind, table, column in _LIMIT_TABLES
}

# Reads of the running sums migration 0005 keeps (never SUMs over the day's ledger rows).
# A server's and the day's spend leave write-offs in (fal may have billed them); a member's
# balance (DayTotals) takes them out.
_TOTALS_SQL = """
SELECT COALESCE(m.reserves, 0), COALESCE(m.settles, 0), COALESCE(m.refunds, 0),
    COALESCE(m.grants, 0), COALESCE(m.resets, 0), COALESCE(m.write_offs, 0),
    COALESCE(g.reserves - g.refunds, 0), COALESCE(d.reserves - d.refunds, 0)
FROM (SELECT 1)
LEFT JOIN ledger_member_day AS m
    ON m.period = :period AND m.guild_id = :guild AND m.user_id = :user
LEFT JOIN ledger_guild_day AS g ON g.period = :period AND g.guild_id = :guild
LEFT JOIN ledger_day AS d ON d.period = :period
"""
_GUILD_SPEND_SQL = (
    "SELECT reserves - refunds FROM ledger_guild_day WHERE period = ? AND guild_id = ?"
)
_GLOBAL_SPEND_SQL = "SELECT reserves - refunds FROM ledger_day WHERE period = ?"
# What counted against a member: write-offs came back to them, like refunds.
_SPENT = (
    "COALESCE(SUM(CASE kind WHEN 'reserve' THEN amount "
    "WHEN 'refund' THEN -amount WHEN 'write_off' THEN -amount END), 0)"
)

# Every check a reservation makes, in one statement: one round trip to the database's thread.
_RESERVE_CHECKS_SQL = f"""
SELECT
    EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = :guild AND user_id = :user),
    (SELECT COUNT(*) FROM jobs WHERE user_id = :user AND state IN ({_UNFINISHED_SQL})),
    totals.*
FROM ({_TOTALS_SQL}) AS totals
"""  # noqa: S608

# A server's settings as one row; the lists come as JSON arrays.
_SETTINGS_COLUMNS = """
    (SELECT daily_budget FROM guild_settings WHERE guild_id = :guild),
    (SELECT default_resolution FROM guild_settings WHERE guild_id = :guild),
    (SELECT audit_channel_id FROM guild_settings WHERE guild_id = :guild),
    (SELECT json_group_array(json_array(mode, model)) FROM guild_default_models
        WHERE guild_id = :guild),
    (SELECT json_group_array(channel_id) FROM guild_channels WHERE guild_id = :guild),
    (SELECT json_group_array(word) FROM guild_blocklist WHERE guild_id = :guild)
"""
_SETTINGS_SQL = f"SELECT {_SETTINGS_COLUMNS}"

# What the checks before a job is accepted read (Store.glance), in one statement.
_GLANCE_SQL = f"""
SELECT {_SETTINGS_COLUMNS},
    (SELECT allowance FROM member_limits WHERE guild_id = :guild AND user_id = :user),
    (SELECT json_group_array(json_array(role_id, allowance)) FROM role_limits
        WHERE guild_id = :guild),
    checks.*
FROM ({_RESERVE_CHECKS_SQL}) AS checks
"""  # noqa: S608

_INSERT_LEDGER_SQL = """
INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, actor_id, note)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
RETURNING *
"""

_INSERT_JOB_SQL = """
INSERT INTO jobs (id, created_at, updated_at, state, mode, endpoint_id, request_json, input_hashes,
    cost, guild_id, channel_id, user_id, interaction_id, interaction_token, token_expires_at, seed,
    parent_job_id, upload_limit)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
RETURNING *
"""

_GUILD_COLUMN_SQL = {
    column: f"""
    INSERT INTO guild_settings (guild_id, {column}, updated_at) VALUES (?, ?, ?)
    ON CONFLICT (guild_id) DO UPDATE SET {column} = excluded.{column},
                                         updated_at = excluded.updated_at
    """  # noqa: S608
    for column in ("daily_budget", "default_resolution", "audit_channel_id")
}


class Store:
    """One open database. Build it with `await Store.open(path)`; close it with `async with`.

    aiosqlite runs the connection on one thread, so two coroutines that each BEGIN ... COMMIT
    would interleave their statements inside one transaction. Every database call therefore
    holds `_lock`; writes also take SQLite's write lock up front (BEGIN IMMEDIATE) so several
    processes sharing the file stay correct, waiting on each other through the busy timeout.

    A database file also gets a second, read-only connection for the reads a command makes
    before Discord's 3 s acknowledgement (`glance`, `guild_settings`): each is one statement
    seeing the last commit (WAL lets it run beside a write), so it waits for no lock and no
    queue of writes. The reservation re-checks everything atomically on the main connection.
    """

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: str,
        clock: Clock,
        reader: aiosqlite.Connection | None = None,
    ) -> None:
        self._db = db
        self._reader = reader
        self._clock = clock
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        clock: Clock = time.time,
        busy_timeout_ms: int = 5000,
        migrations: Sequence[Migration] | None = None,
    ) -> Store:
        """Open (creating if needed) the database at `path` and apply pending migrations.

        `":memory:"` gives a private in-memory database, for tests.
        """
        name = str(path)
        if name != ":memory:":
            await asyncio.to_thread(Path(name).parent.mkdir, parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves instead of sqlite3's implicit ones.
        db = await aiosqlite.connect(name, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await db.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit survives power loss too, so a job recorded as sent is never resent.
            await db.execute("PRAGMA synchronous = FULL")
            await db.execute("PRAGMA foreign_keys = ON")
            chosen = bundled_migrations() if migrations is None else list(migrations)
            await apply_migrations(db, chosen, int(clock()))
        except BaseException:
            await db.close()
            raise
        reader = None
        if name != ":memory:":  # a second connection to ":memory:" would be another database
            reader = await aiosqlite.connect(name, isolation_level=None)
            try:
                reader.row_factory = aiosqlite.Row
                await reader.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                await reader.execute("PRAGMA query_only = ON")
            except BaseException:
                await reader.close()
                await db.close()
                raise
        return cls(db, name, clock, reader)

    async def close(self) -> None:
        """Close the connections; the store cannot be used afterwards."""
        async with self._lock:
            try:
                if self._reader is not None:
                    await self._reader.close()
            finally:
                await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _now(self) -> int:
        return int(self._clock())

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException:
                # Awaited directly (not shielded) so the ROLLBACK is queued on the connection's
                # thread before the lock is released, even when this task is being cancelled.
                await self._db.rollback()
                raise

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self._db

    @asynccontextmanager
    async def _glance(self) -> AsyncIterator[aiosqlite.Connection]:
        """The read-only connection, for ONE statement (no transaction spans two); without
        one (":memory:") the main connection under the lock."""
        if self._reader is None:
            async with self._read() as db:
                yield db
        else:
            yield self._reader

    async def schema_version(self) -> int:
        """The newest migration applied to this database."""
        async with self._read() as db:
            return int(await _scalar(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    # Jobs and reservations

    async def create_job(
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
        async with self._write() as db:
            rows = await db.execute_fetchall(
                _RESERVE_CHECKS_SQL, {"guild": guild_id, "user": user_id, "period": period}
            )
            blocked, unfinished, *sums, guild_spent, global_spent = (
                int(v) for v in next(iter(rows))
            )
            if blocked:
                raise MemberBlocked(cost=cost)
            if unfinished >= max_unfinished:
                raise TooManyJobs(cost=cost, unfinished=unfinished, limit=max_unfinished)
            balance = DayTotals(*sums).balance(allowance)
            if cost > balance.left:
                raise AllowanceExceeded(cost=cost, left=balance.left, limit=allowance)
            if guild_spent + cost > guild_budget:
                raise GuildBudgetExceeded(
                    cost=cost, left=guild_budget - guild_spent, limit=guild_budget
                )
            if global_spent + cost > global_budget:
                raise GlobalBudgetExceeded(
                    cost=cost, left=global_budget - global_spent, limit=global_budget
                )

            now = self._now()
            job_row = None
            while job_row is None:
                # 40 random bits make a clash rare, not impossible: on one, draw another id.
                inserted = await db.execute_fetchall(
                    _INSERT_JOB_SQL,
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
                _INSERT_LEDGER_SQL,
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

    async def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        async with self._read() as db:
            return await _job(db, job_id)

    async def unfinished_jobs(self) -> list[Job]:
        """Every job not yet in a terminal state, oldest first: what a restart must resume."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                f"SELECT * FROM jobs WHERE state IN ({_UNFINISHED_SQL}) "  # noqa: S608
                "ORDER BY created_at, rowid"
            )
        return [Job.from_row(row) for row in rows]

    async def untold_endings(self, *, since: int) -> list[Job]:
        """Jobs that ended without a video since `since` whose member was never told why."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                "SELECT * FROM jobs WHERE state IN ('failed', 'cancelled', 'unknown') "
                "AND told_at IS NULL AND finished_at >= ? ORDER BY finished_at, rowid",
                (since,),
            )
        return [Job.from_row(row) for row in rows]

    async def count_unfinished(self, user_id: int) -> int:
        """How many of the member's jobs (in any server) are waiting or running."""
        async with self._read() as db:
            return await self._count_unfinished(db, user_id)

    async def _count_unfinished(self, db: aiosqlite.Connection, user_id: int) -> int:
        return int(
            await _scalar(
                db,
                f"SELECT COUNT(*) FROM jobs WHERE user_id = ? AND state IN ({_UNFINISHED_SQL})",  # noqa: S608
                (user_id,),
            )
        )

    async def recent_jobs(
        self, user_id: int, *, guild_id: int | None = None, limit: int = 10
    ) -> list[Job]:
        """The member's newest jobs, newest first; only in `guild_id` when given."""
        async with self._read() as db:
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

    async def newest_unfinished_job(
        self, user_id: int, *, guild_id: int | None = None
    ) -> Job | None:
        """The member's newest job still waiting or running (what /pika cancel picks)."""
        async with self._read() as db:
            if guild_id is None:
                rows = await db.execute_fetchall(
                    f"SELECT * FROM jobs WHERE user_id = ? AND state IN ({_UNFINISHED_SQL}) "  # noqa: S608
                    "ORDER BY created_at DESC, rowid DESC LIMIT 1",
                    (user_id,),
                )
            else:
                rows = await db.execute_fetchall(
                    "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ? "  # noqa: S608
                    f"AND state IN ({_UNFINISHED_SQL}) "
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
        async with self._write() as db:
            return await self._transition(db, job_id, to, expected, changes)

    async def finish_job(
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
        async with self._write() as db:
            moved = await self._transition(db, job_id, to, expected, changes)
            if moved and outcome is not None:
                await _end_reservation(db, self._now(), job_id, outcome, actor_id, note)
            return moved

    async def update_job(self, job_id: str, **changes: Unpack[JobChanges]) -> bool:
        """Set some of a job's changeable columns without changing its state."""
        if not changes:
            return await self.get_job(job_id) is not None
        assignments, params = _assignments(changes)
        async with self._write() as db:
            cursor = await db.execute(
                f"UPDATE jobs SET updated_at = ?, {assignments} WHERE id = ?",  # noqa: S608
                (self._now(), *params, job_id),
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
        now = self._now()
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

    async def settle(self, job_id: str, *, actor_id: int = 0, note: str = "") -> bool:
        """Turn the job's reservation into a charge; False if it already ended (or none)."""
        async with self._write() as db:
            return await _end_reservation(
                db, self._now(), job_id, LedgerKind.SETTLE, actor_id, note
            )

    async def refund(self, job_id: str, *, actor_id: int = 0, note: str = "") -> bool:
        """Give the job's reservation back; False if it already ended (or none)."""
        async with self._write() as db:
            return await _end_reservation(
                db, self._now(), job_id, LedgerKind.REFUND, actor_id, note
            )

    # Balances and the ledger

    async def balance(self, guild_id: int, user_id: int, *, period: str, allowance: int) -> Balance:
        """The member's credits in this server for the allowance day `period`."""
        async with self._read() as db:
            totals = await _day_totals(db, guild_id, user_id, period)
        return totals.balance(allowance)

    async def grant(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        *,
        period: str,
        actor_id: int,
        note: str = "",
    ) -> LedgerEntry:
        """Give the member one-off credits for the allowance day `period`."""
        if amount <= 0:
            raise ValueError(f"a grant must be at least 1 credit, not {amount}")
        async with self._write() as db:
            entry = await _append(
                db,
                self._now(),
                period,
                guild_id,
                user_id,
                None,
                LedgerKind.GRANT,
                amount,
                actor_id,
                note,
            )
            await _audit(
                db,
                self._now(),
                guild_id,
                actor_id,
                "grant",
                {"user_id": user_id, "amount": amount, "period": period, "note": note},
            )
        assert entry is not None
        return entry

    async def reset_member(
        self, guild_id: int, user_id: int, *, period: str, actor_id: int, note: str = ""
    ) -> LedgerEntry:
        """Credit back what the member was charged in `period` and has not had credited back.

        Only settled credits come back: credits still held by unfinished jobs return through
        their own refund if those jobs fail (crediting them now too would pay them twice).
        Afterwards the member has their full allowance (plus grants) again for that day, less
        what is still held. The row is written even when there was nothing to credit, so the
        reset is on record.
        """
        async with self._write() as db:
            totals = await _day_totals(db, guild_id, user_id, period)
            credit = max(0, totals.settles - totals.resets)
            entry = await _append(
                db,
                self._now(),
                period,
                guild_id,
                user_id,
                None,
                LedgerKind.RESET,
                credit,
                actor_id,
                note,
            )
            await _audit(
                db,
                self._now(),
                guild_id,
                actor_id,
                "reset",
                {"user_id": user_id, "credited": credit, "period": period, "note": note},
            )
        assert entry is not None
        return entry

    async def member_ledger(
        self, guild_id: int, user_id: int, *, period: str | None = None
    ) -> list[LedgerEntry]:
        """The member's ledger rows in this server, oldest first; one day only when given."""
        async with self._read() as db:
            if period is None:
                rows = await db.execute_fetchall(
                    "SELECT * FROM ledger WHERE guild_id = ? AND user_id = ? ORDER BY id",
                    (guild_id, user_id),
                )
            else:
                rows = await db.execute_fetchall(
                    "SELECT * FROM ledger WHERE guild_id = ? AND user_id = ? AND period = ? "
                    "ORDER BY id",
                    (guild_id, user_id, period),
                )
        return [_ledger_entry(row) for row in rows]

    async def job_ledger(self, job_id: str) -> list[LedgerEntry]:
        """The ledger rows of one job, oldest first."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                "SELECT * FROM ledger WHERE job_id = ? ORDER BY id", (job_id,)
            )
        return [_ledger_entry(row) for row in rows]

    async def guild_spend(self, guild_id: int, period: str) -> int:
        """Credits held or charged in this server on the allowance day `period`."""
        async with self._read() as db:
            return int(await _scalar(db, _GUILD_SPEND_SQL, (period, guild_id)) or 0)

    async def global_spend(self, period: str) -> int:
        """Credits held or charged across all servers on the allowance day `period`."""
        async with self._read() as db:
            return int(await _scalar(db, _GLOBAL_SPEND_SQL, (period,)) or 0)

    async def spend_per_day(self, guild_id: int, *, days: int = 7) -> list[DaySpend]:
        """The server's spend on its last `days` allowance days with any activity, newest first."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                """
                SELECT period,
                    COALESCE(SUM(CASE kind WHEN 'reserve' THEN amount
                                           WHEN 'refund' THEN -amount END), 0),
                    COALESCE(SUM(CASE WHEN kind = 'settle' THEN amount END), 0),
                    COALESCE(SUM(CASE WHEN kind = 'refund' THEN amount END), 0),
                    COUNT(CASE WHEN kind = 'reserve' THEN 1 END),
                    COALESCE(SUM(CASE WHEN kind = 'write_off' THEN amount END), 0)
                FROM ledger
                WHERE guild_id = ? AND kind IN ('reserve', 'settle', 'refund', 'write_off')
                GROUP BY period ORDER BY period DESC LIMIT ?
                """,
                (guild_id, days),
            )
        return [
            DaySpend(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows
        ]

    async def top_members(self, guild_id: int, period: str, *, limit: int = 5) -> list[MemberSpend]:
        """The members who spent most in this server on `period`, biggest first."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                f"""
                SELECT user_id, {_SPENT} AS spent, COUNT(CASE WHEN kind = 'reserve' THEN 1 END)
                FROM ledger WHERE guild_id = ? AND period = ?
                GROUP BY user_id HAVING spent > 0 ORDER BY spent DESC, user_id LIMIT ?
                """,  # noqa: S608
                (guild_id, period, limit),
            )
        return [MemberSpend(int(r[0]), int(r[1]), int(r[2])) for r in rows]

    async def failure_counts(self, guild_id: int, *, since: int) -> dict[str, int]:
        """How many of the server's jobs failed since `since`, by error code."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                "SELECT COALESCE(error_code, 'unknown'), COUNT(*) FROM jobs "
                "WHERE guild_id = ? AND state = 'failed' AND finished_at >= ? "
                "GROUP BY 1 ORDER BY 2 DESC",
                (guild_id, since),
            )
        return {str(r[0]): int(r[1]) for r in rows}

    # Limits and blocks

    async def set_role_limit(
        self, guild_id: int, role_id: int, allowance: int | None, *, actor_id: int
    ) -> None:
        """Set the daily allowance of members with this role; None removes the role's limit."""
        await self._set_limit("role", guild_id, role_id, allowance, actor_id=actor_id)

    async def set_member_limit(
        self, guild_id: int, user_id: int, allowance: int | None, *, actor_id: int
    ) -> None:
        """Set one member's daily allowance (it beats their roles); None removes it."""
        await self._set_limit("member", guild_id, user_id, allowance, actor_id=actor_id)

    async def _set_limit(
        self, kind: str, guild_id: int, subject_id: int, allowance: int | None, *, actor_id: int
    ) -> None:
        async with self._write() as db:
            if allowance is None:
                await db.execute(_DELETE_LIMIT_SQL[kind], (guild_id, subject_id))
            else:
                _check_allowance(allowance)
                await db.execute(
                    _SET_LIMIT_SQL[kind], (guild_id, subject_id, allowance, actor_id, self._now())
                )
            await _audit(
                db,
                self._now(),
                guild_id,
                actor_id,
                f"limit.{kind}",
                {_LIMIT_SUBJECT[kind]: subject_id, "allowance": allowance},
            )

    async def role_limits(self, guild_id: int) -> dict[int, int]:
        """Role id -> daily allowance, for every role with a limit in this server."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                "SELECT role_id, allowance FROM role_limits WHERE guild_id = ?", (guild_id,)
            )
        return {int(r[0]): int(r[1]) for r in rows}

    async def member_limits(self, guild_id: int) -> dict[int, int]:
        """User id -> daily allowance, for every member with their own limit in this server."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                "SELECT user_id, allowance FROM member_limits WHERE guild_id = ?", (guild_id,)
            )
        return {int(r[0]): int(r[1]) for r in rows}

    async def allowance_for(
        self, guild_id: int, user_id: int, role_ids: Iterable[int], default: int
    ) -> int:
        """The member's daily allowance: their own limit, else their best role's, else default."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                "SELECT 'member', user_id, allowance FROM member_limits "
                "WHERE guild_id = :guild AND user_id = :user "
                "UNION ALL SELECT 'role', role_id, allowance FROM role_limits "
                "WHERE guild_id = :guild",
                {"guild": guild_id, "user": user_id},
            )
        own = [int(r[2]) for r in rows if r[0] == "member"]
        if own:
            return own[0]
        by_role = {int(r[1]): int(r[2]) for r in rows if r[0] == "role"}
        limits = [by_role[role] for role in role_ids if role in by_role]
        return max(limits) if limits else default

    async def block_member(
        self, guild_id: int, user_id: int, *, actor_id: int, reason: str = ""
    ) -> None:
        """Stop the member from generating in this server (until unblocked)."""
        async with self._write() as db:
            await db.execute(
                """
                INSERT INTO blocked_members (guild_id, user_id, actor_id, reason, created_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (guild_id, user_id) DO UPDATE SET actor_id = excluded.actor_id,
                    reason = excluded.reason, created_at = excluded.created_at
                """,
                (guild_id, user_id, actor_id, reason, self._now()),
            )
            await _audit(
                db, self._now(), guild_id, actor_id, "block", {"user_id": user_id, "reason": reason}
            )

    async def unblock_member(self, guild_id: int, user_id: int, *, actor_id: int) -> bool:
        """Lift a block; False if the member was not blocked."""
        async with self._write() as db:
            cursor = await db.execute(
                "DELETE FROM blocked_members WHERE guild_id = ? AND user_id = ?",
                (guild_id, user_id),
            )
            if cursor.rowcount != 1:
                return False
            await _audit(db, self._now(), guild_id, actor_id, "unblock", {"user_id": user_id})
            return True

    async def is_blocked(self, guild_id: int, user_id: int) -> bool:
        """Whether the member is blocked in this server."""
        async with self._read() as db:
            return await _exists(
                db,
                "SELECT 1 FROM blocked_members WHERE guild_id = ? AND user_id = ?",
                (guild_id, user_id),
            )

    async def blocked_members(self, guild_id: int) -> list[Block]:
        """Every block in this server, oldest first."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                "SELECT guild_id, user_id, actor_id, reason, created_at FROM blocked_members "
                "WHERE guild_id = ? ORDER BY created_at, user_id",
                (guild_id,),
            )
        return [Block(int(r[0]), int(r[1]), int(r[2]), str(r[3]), int(r[4])) for r in rows]

    # Server settings

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """Everything this server has set (defaults where it has set nothing)."""
        async with self._glance() as db:
            rows = await db.execute_fetchall(_SETTINGS_SQL, {"guild": guild_id})
        return _guild_settings(guild_id, next(iter(rows)))

    async def glance(self, guild_id: int, user_id: int, *, period: str) -> Glance:
        """What the checks before a job is accepted need, in one read: the server's settings,
        the member's block, limits, unfinished jobs and day's sums, and the day's spend."""
        async with self._glance() as db:
            rows = await db.execute_fetchall(
                _GLANCE_SQL, {"guild": guild_id, "user": user_id, "period": period}
            )
        row = tuple(next(iter(rows)))
        own, roles_json, blocked, unfinished, *sums, guild_spent, global_spent = row[6:]
        return Glance(
            settings=_guild_settings(guild_id, row[:6]),
            blocked=bool(blocked),
            own_allowance=None if own is None else int(own),
            role_allowances={int(role): int(limit) for role, limit in json.loads(roles_json)},
            unfinished=int(unfinished),
            day=DayTotals(*(int(v) for v in sums)),
            guild_spent=int(guild_spent),
            global_spent=int(global_spent),
        )

    async def set_daily_budget(self, guild_id: int, budget: int | None, *, actor_id: int) -> None:
        """Set this server's daily budget in credits; None goes back to the configured default."""
        if budget is not None and budget < 0:
            raise ValueError(f"a daily budget cannot be negative, not {budget}")
        await self._set_guild_column(guild_id, "daily_budget", budget, actor_id)

    async def set_default_resolution(
        self, guild_id: int, resolution: str | None, *, actor_id: int
    ) -> None:
        """Set the resolution used when a member names none; None goes back to the default."""
        await self._set_guild_column(guild_id, "default_resolution", resolution, actor_id)

    async def set_audit_channel(
        self, guild_id: int, channel_id: int | None, *, actor_id: int
    ) -> None:
        """Set the channel admin actions are posted to; None stops posting them."""
        await self._set_guild_column(guild_id, "audit_channel_id", channel_id, actor_id)

    async def _set_guild_column(
        self, guild_id: int, column: str, value: int | str | None, actor_id: int
    ) -> None:
        async with self._write() as db:
            await db.execute(_GUILD_COLUMN_SQL[column], (guild_id, value, self._now()))
            await _audit(db, self._now(), guild_id, actor_id, f"settings.{column}", {column: value})

    async def set_default_model(
        self, guild_id: int, mode: str, model: str | None, *, actor_id: int
    ) -> None:
        """Set the model used for `mode` when a member names none; None goes back to default."""
        async with self._write() as db:
            if model is None:
                await db.execute(
                    "DELETE FROM guild_default_models WHERE guild_id = ? AND mode = ?",
                    (guild_id, str(mode)),
                )
            else:
                await db.execute(
                    """
                    INSERT INTO guild_default_models (guild_id, mode, model) VALUES (?, ?, ?)
                    ON CONFLICT (guild_id, mode) DO UPDATE SET model = excluded.model
                    """,
                    (guild_id, str(mode), model),
                )
            await _audit(
                db,
                self._now(),
                guild_id,
                actor_id,
                "settings.default_model",
                {"mode": str(mode), "model": model},
            )

    async def allow_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Add a channel where generation is allowed; False if it already was listed.

        While a server lists no channel, generation is allowed everywhere.
        """
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO guild_channels (guild_id, channel_id) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                (guild_id, channel_id),
            )
            added = cursor.rowcount == 1
            if added:
                await _audit(
                    db,
                    self._now(),
                    guild_id,
                    actor_id,
                    "channels.allow",
                    {"channel_id": channel_id},
                )
            return added

    async def disallow_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Remove a channel from the allowed list; False if it was not listed."""
        async with self._write() as db:
            cursor = await db.execute(
                "DELETE FROM guild_channels WHERE guild_id = ? AND channel_id = ?",
                (guild_id, channel_id),
            )
            removed = cursor.rowcount == 1
            if removed:
                await _audit(
                    db,
                    self._now(),
                    guild_id,
                    actor_id,
                    "channels.disallow",
                    {"channel_id": channel_id},
                )
            return removed

    async def clear_allowed_channels(self, guild_id: int, *, actor_id: int) -> None:
        """Empty the allowed list: generation is allowed in every channel again."""
        async with self._write() as db:
            await db.execute("DELETE FROM guild_channels WHERE guild_id = ?", (guild_id,))
            await _audit(db, self._now(), guild_id, actor_id, "channels.clear", {})

    async def add_blocked_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Refuse prompts containing `word` (compared lowercased); False if already listed."""
        word = _blocklist_word(word)
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO guild_blocklist (guild_id, word) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (guild_id, word),
            )
            added = cursor.rowcount == 1
            if added:
                await _audit(db, self._now(), guild_id, actor_id, "blocklist.add", {"word": word})
            return added

    async def remove_blocked_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Stop refusing `word`; False if it was not listed."""
        word = _blocklist_word(word)
        async with self._write() as db:
            cursor = await db.execute(
                "DELETE FROM guild_blocklist WHERE guild_id = ? AND word = ?", (guild_id, word)
            )
            removed = cursor.rowcount == 1
            if removed:
                await _audit(
                    db, self._now(), guild_id, actor_id, "blocklist.remove", {"word": word}
                )
            return removed

    # Audit and meta

    async def add_audit(
        self,
        guild_id: int,
        actor_id: int,
        action: str,
        details: Mapping[str, object] | None = None,
    ) -> AuditEntry:
        """Record an admin action (the store's own setters record theirs already)."""
        async with self._write() as db:
            return await _audit(db, self._now(), guild_id, actor_id, action, details or {})

    async def audit_log(self, guild_id: int, *, limit: int = 20) -> list[AuditEntry]:
        """The server's newest audit entries, newest first."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                "SELECT id, ts, guild_id, actor_id, action, details FROM audit "
                "WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
                (guild_id, limit),
            )
        return [_audit_entry(row) for row in rows]

    async def get_meta(self, key: str) -> str | None:
        """A bot-wide value kept across restarts (e.g. the hash of the last command sync)."""
        async with self._read() as db:
            row = await _fetchone(db, "SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        """Keep a bot-wide value across restarts."""
        async with self._write() as db:
            await db.execute(
                "INSERT INTO meta (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (key, value, self._now()),
            )

    # Operations and privacy

    async def job_counts(self) -> dict[tuple[str, str], int]:
        """How many jobs there are by (mode, state), for the operator's metrics."""
        async with self._read() as db:
            rows = await db.execute_fetchall(
                "SELECT mode, state, COUNT(*) FROM jobs GROUP BY mode, state"
            )
        return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}

    async def forget_member(self, guild_id: int, user_id: int) -> ForgottenMember:
        """Scrub the member's finished jobs in this server and anonymise their ledger rows,
        in one transaction; the caller deletes the files named in the answer."""
        async with self._write() as db:
            return await forget_member(db, self._now(), guild_id, user_id)

    async def expire_jobs(self, finished_before: int) -> ExpiredJobs:
        """Clear the prompts and personal data of jobs finished before this epoch second, in one
        transaction (the rows stay for the ledger); the caller deletes the files named."""
        async with self._write() as db:
            return await expire_jobs(db, self._now(), finished_before)


# Statement helpers shared by the methods above; each runs inside the caller's lock.


async def _fetchone(db: aiosqlite.Connection, sql: str, params: Sequence[object] = ()) -> Any:
    # One round trip to the connection's thread (execute, fetchone and close would be three),
    # and the statement is run to its end, so a RETURNING insert never blocks a COMMIT.
    rows = await db.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def _scalar(db: aiosqlite.Connection, sql: str, params: Sequence[object] = ()) -> Any:
    row = await _fetchone(db, sql, params)
    return None if row is None else row[0]


async def _exists(db: aiosqlite.Connection, sql: str, params: Sequence[object]) -> bool:
    return await _fetchone(db, sql, params) is not None


async def _job(db: aiosqlite.Connection, job_id: str) -> Job | None:
    row = await _fetchone(db, "SELECT * FROM jobs WHERE id = ?", (job_id,))
    return None if row is None else Job.from_row(row)


async def _day_totals(
    db: aiosqlite.Connection, guild_id: int, user_id: int, period: str
) -> DayTotals:
    rows = await db.execute_fetchall(
        _TOTALS_SQL, {"guild": guild_id, "user": user_id, "period": period}
    )
    *sums, _, _ = (int(v) for v in next(iter(rows)))
    return DayTotals(*sums)


async def _append(
    db: aiosqlite.Connection,
    ts: int,
    period: str,
    guild_id: int,
    user_id: int,
    job_id: str | None,
    kind: LedgerKind,
    amount: int,
    actor_id: int,
    note: str,
) -> LedgerEntry | None:
    """Append a ledger row; None when a uniqueness rule made it a no-op."""
    row = await _fetchone(
        db,
        _INSERT_LEDGER_SQL,
        (ts, period, guild_id, user_id, job_id, kind.value, amount, actor_id, note),
    )
    return None if row is None else _ledger_entry(row)


async def _end_reservation(
    db: aiosqlite.Connection,
    now: int,
    job_id: str,
    kind: LedgerKind,
    actor_id: int,
    note: str,
) -> bool:
    # The ending mirrors the reservation (same period, member and amount) so a refund or
    # settle always lands on the day the credits were taken from.
    reserve = await _fetchone(
        db,
        "SELECT period, guild_id, user_id, amount FROM ledger "
        "WHERE job_id = ? AND kind = 'reserve'",
        (job_id,),
    )
    if reserve is None:
        return False
    period, guild_id, user_id, amount = reserve
    entry = await _append(db, now, period, guild_id, user_id, job_id, kind, amount, actor_id, note)
    return entry is not None


async def _audit(
    db: aiosqlite.Connection,
    now: int,
    guild_id: int,
    actor_id: int,
    action: str,
    details: Mapping[str, object],
) -> AuditEntry:
    row = await _fetchone(
        db,
        "INSERT INTO audit (ts, guild_id, actor_id, action, details) VALUES (?, ?, ?, ?, ?) "
        "RETURNING id, ts, guild_id, actor_id, action, details",
        (now, guild_id, actor_id, action, json.dumps(dict(details), sort_keys=True, default=str)),
    )
    return _audit_entry(row)


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


def _guild_settings(guild_id: int, row: Sequence[Any]) -> GuildSettings:
    budget, resolution, audit_channel, models, channels, words = row
    return GuildSettings(
        guild_id=guild_id,
        daily_budget=budget,
        default_resolution=resolution,
        audit_channel_id=audit_channel,
        default_models={str(mode): str(model) for mode, model in json.loads(models)},
        allowed_channels=frozenset(int(channel) for channel in json.loads(channels)),
        # Sorted here: json_group_array keeps no promised order. Code-point order is the
        # byte order SQLite's ORDER BY gave for UTF-8 text.
        blocklist=tuple(sorted(str(word) for word in json.loads(words))),
    )


def _ledger_entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        id=int(row["id"]),
        ts=int(row["ts"]),
        period=str(row["period"]),
        guild_id=int(row["guild_id"]),
        user_id=int(row["user_id"]),
        job_id=row["job_id"],
        kind=LedgerKind(row["kind"]),
        amount=int(row["amount"]),
        actor_id=int(row["actor_id"]),
        note=str(row["note"]),
    )


def _audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=int(row[0]),
        ts=int(row[1]),
        guild_id=int(row[2]),
        actor_id=int(row[3]),
        action=str(row[4]),
        details_json=str(row[5]),
    )


def _check_allowance(allowance: int) -> None:
    if allowance < 0:
        raise ValueError(f"an allowance cannot be negative, not {allowance}")


def _blocklist_word(word: str) -> str:
    cleaned = word.strip().casefold()
    if not cleaned:
        raise ValueError("a blocked word cannot be empty")
    return cleaned
