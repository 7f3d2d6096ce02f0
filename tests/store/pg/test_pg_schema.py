"""The PostgreSQL schema on a real server: migrations applied once, and the ledger's invariants.

Each invariant here is one SQLite's schema keeps (tests/store/test_store_ledger.py,
test_store_totals.py, test_store_migrations.py), checked with plain SQL since the PostgreSQL
store itself comes later; the randomized totals test also runs the same rows through SQLite's
schema and expects the same running sums from both.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import pytest

from bot.store.errors import DatabaseTooNew, MigrationEdited, MigrationFailed
from bot.store.postgres.schema import apply_migrations, bundled_migrations, schema_version
from bot.store.schema import Migration
from bot.store.schema import bundled_migrations as sqlite_migrations

PERIOD = "2026-11-21"
NOW = 1_795_300_000

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

_BY_KIND = """
    SUM(CASE kind WHEN 'reserve' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'settle' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'refund' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'write_off' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'grant' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'reset' THEN amount ELSE 0 END)
"""
_KINDS = "reserves, settles, refunds, write_offs, grants, resets"
# Member, server and day: the running sums as kept, and as an auditor recomputes them.
_RUNNING = (
    (f"SELECT period, guild_id, user_id, {_KINDS} FROM ledger_member_day", 3),
    (f"SELECT period, guild_id, {_KINDS} FROM ledger_guild_day", 2),
    (f"SELECT period, {_KINDS} FROM ledger_day", 1),
)
_RECOMPUTED = (
    (f"SELECT period, guild_id, user_id, {_BY_KIND} FROM ledger GROUP BY 1, 2, 3", 3),
    (f"SELECT period, guild_id, {_BY_KIND} FROM ledger GROUP BY 1, 2", 2),
    (f"SELECT period, {_BY_KIND} FROM ledger GROUP BY 1", 1),
)

Sums = dict[tuple[object, ...], tuple[int, ...]]


def _collect(rows: Sequence[Sequence[object]], keys: int) -> Sums:
    # A key whose sums are all zero (a reset of nothing) counts as no key at all.
    return {
        tuple(row[:keys]): tuple(int(str(v)) for v in row[keys:])
        for row in rows
        if any(int(str(v)) for v in row[keys:])
    }


async def pg_sums(conn: asyncpg.Connection, queries: tuple[tuple[str, int], ...]) -> list[Sums]:
    return [_collect(await conn.fetch(sql), keys) for sql, keys in queries]


def sqlite_sums(conn: sqlite3.Connection, queries: tuple[tuple[str, int], ...]) -> list[Sums]:
    return [_collect(conn.execute(sql).fetchall(), keys) for sql, keys in queries]


@pytest.fixture
async def db(pg: asyncpg.Connection) -> asyncpg.Connection:
    """This test's database with every bundled migration applied."""
    await apply_migrations(pg, bundled_migrations(), NOW)
    return pg


async def add_job(conn: asyncpg.Connection, job_id: str, guild: int = 1, user: int = 100) -> None:
    await conn.execute(
        "INSERT INTO jobs (id, created_at, updated_at, state, mode, endpoint_id, request_json, "
        "cost, guild_id, channel_id, user_id) "
        "VALUES ($1, $2, $2, 'queued', 'text', 'e', '{}', 0, $3, 5, $4)",
        job_id,
        NOW,
        guild,
        user,
    )


async def add_row(
    conn: asyncpg.Connection,
    kind: str,
    amount: int,
    *,
    job_id: str | None = None,
    guild: int = 1,
    user: int = 100,
    period: str = PERIOD,
) -> None:
    await conn.execute(
        "INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, actor_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
        NOW,
        period,
        guild,
        user,
        job_id,
        kind,
        amount,
    )


async def reserved_job(conn: asyncpg.Connection, job_id: str = "j1", amount: int = 20) -> str:
    await add_job(conn, job_id)
    await add_row(conn, "reserve", amount, job_id=job_id)
    return job_id


# Migrations.


def test_bundled_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in bundled_migrations()]
    assert versions == list(range(1, len(versions) + 1))


async def test_migrations_apply_from_empty_and_create_every_table(pg: asyncpg.Connection) -> None:
    assert await schema_version(pg) == 0
    done = await apply_migrations(pg, bundled_migrations(), NOW)
    assert done == [m.version for m in bundled_migrations()]
    names = await pg.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert {row["tablename"] for row in names} == EXPECTED_TABLES
    recorded = await pg.fetch(
        "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
    )
    assert [tuple(row) for row in recorded] == [
        (m.version, m.name, m.checksum, NOW) for m in bundled_migrations()
    ]
    assert await schema_version(pg) == bundled_migrations()[-1].version


async def test_every_sqlite_table_has_the_same_columns_here(db: asyncpg.Connection) -> None:
    lite = sqlite3.connect(":memory:")
    for migration in sqlite_migrations():
        lite.executescript(migration.sql)
    expected = {
        table: {row[1] for row in lite.execute(f"PRAGMA table_info({table})")}
        for (table,) in lite.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'sqlite_sequence'"
        ).fetchall()
    }
    rows = await db.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public'"
    )
    here: dict[str, set[str]] = {}
    for row in rows:
        here.setdefault(row["table_name"], set()).add(row["column_name"])
    assert {t: c for t, c in here.items() if t != "schema_migrations"} == {
        t: c for t, c in expected.items() if t != "schema_migrations"
    }


async def test_running_the_migrations_again_applies_nothing(db: asyncpg.Connection) -> None:
    before = await db.fetch("SELECT * FROM schema_migrations ORDER BY version")
    assert await apply_migrations(db, bundled_migrations(), NOW + 3600) == []
    assert await db.fetch("SELECT * FROM schema_migrations ORDER BY version") == before


async def test_concurrent_appliers_apply_each_migration_once(
    pg: asyncpg.Connection, pg_dsn: str
) -> None:
    others = [await asyncpg.connect(pg_dsn) for _ in range(5)]
    try:
        results = await asyncio.gather(
            *(apply_migrations(conn, bundled_migrations(), NOW) for conn in [pg, *others])
        )
    finally:
        for conn in others:
            await conn.close()
    applied = sorted(v for done in results for v in done)
    assert applied == [m.version for m in bundled_migrations()]  # each once, by someone
    count = await pg.fetchval("SELECT count(*) FROM schema_migrations")
    assert count == len(bundled_migrations())


async def test_a_failing_migration_leaves_nothing_of_itself(db: asyncpg.Connection) -> None:
    broken = Migration(
        bundled_migrations()[-1].version + 1,
        "broken",
        "CREATE TABLE notes (id bigint PRIMARY KEY);\nSELECT 1 / 0;\n",
    )
    with pytest.raises(MigrationFailed, match="broken"):
        await apply_migrations(db, [*bundled_migrations(), broken], NOW)
    assert await db.fetchval("SELECT to_regclass('notes')") is None
    assert await schema_version(db) == bundled_migrations()[-1].version


async def test_a_new_migration_is_applied_and_recorded(db: asyncpg.Connection) -> None:
    extra = Migration(
        bundled_migrations()[-1].version + 1,
        "add_notes",
        "CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL);\n"
        "INSERT INTO notes VALUES (1, 'first; with a semicolon');\n",
    )
    assert await apply_migrations(db, [*bundled_migrations(), extra], NOW + 60) == [extra.version]
    assert await db.fetchval("SELECT body FROM notes") == "first; with a semicolon"


async def test_an_applied_migration_edited_since_is_refused(db: asyncpg.Connection) -> None:
    first, *rest = bundled_migrations()
    edited = Migration(first.version, first.name, first.sql + "\n-- edited\n")
    with pytest.raises(MigrationEdited):
        await apply_migrations(db, [edited, *rest], NOW)


async def test_a_database_newer_than_the_bot_is_refused(db: asyncpg.Connection) -> None:
    with pytest.raises(DatabaseTooNew):
        await apply_migrations(db, bundled_migrations()[:-1], NOW)


# The ledger's rules.


async def test_the_ledger_refuses_update_delete_and_truncate(db: asyncpg.Connection) -> None:
    await reserved_job(db)
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await db.execute("UPDATE ledger SET amount = 0")
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await db.execute("UPDATE ledger SET user_id = 7")  # only to 0, the anonymous member
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await db.execute("DELETE FROM ledger")
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await db.execute("TRUNCATE ledger")
    assert [tuple(r) for r in await db.fetch("SELECT amount, user_id FROM ledger")] == [(20, 100)]


async def test_the_ledger_allows_anonymising_and_moves_the_sums(db: asyncpg.Connection) -> None:
    await add_row(db, "grant", 15, user=100)
    await add_row(db, "grant", 5, user=0)
    await db.execute("UPDATE ledger SET user_id = 0, actor_id = 0, note = '' WHERE user_id = 100")
    member = await db.fetch("SELECT user_id, grants FROM ledger_member_day ORDER BY user_id")
    assert [tuple(r) for r in member] == [(0, 20)]  # member 100 left no row behind
    assert await db.fetchval("SELECT grants FROM ledger_guild_day") == 20
    assert await pg_sums(db, _RUNNING) == await pg_sums(db, _RECOMPUTED)


async def test_a_job_has_one_reservation(db: asyncpg.Connection) -> None:
    job = await reserved_job(db)
    with pytest.raises(asyncpg.UniqueViolationError, match="ledger_one_reserve"):
        await add_row(db, "reserve", 20, job_id=job)


@pytest.mark.parametrize("second", ["settle", "refund", "write_off"])
async def test_a_reservation_ends_once(db: asyncpg.Connection, second: str) -> None:
    job = await reserved_job(db)
    await add_row(db, "settle", 20, job_id=job)
    with pytest.raises(asyncpg.UniqueViolationError, match="ledger_one_ending"):
        await add_row(db, second, 20, job_id=job)


async def test_concurrent_endings_from_many_connections_leave_one(
    db: asyncpg.Connection, pg_dsn: str
) -> None:
    job = await reserved_job(db)
    pool = await asyncpg.create_pool(pg_dsn, min_size=10, max_size=10)
    assert pool is not None

    async def end(kind: str) -> bool:
        async with pool.acquire() as conn:
            try:
                await add_row(conn, kind, 20, job_id=job)
            except asyncpg.UniqueViolationError:
                return False
            return True

    try:
        kinds = ["settle", "refund", "write_off"]
        results = await asyncio.gather(*(end(kinds[i % 3]) for i in range(30)))
    finally:
        await pool.close()
    assert results.count(True) == 1
    assert await db.fetchval("SELECT count(*) FROM ledger WHERE job_id = $1", job) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 19},
        {"amount": 21},
        {"period": "2026-11-22"},
        {"guild": 2},
        {"user": 101},
    ],
    ids=["less", "more", "other-day", "other-server", "other-member"],
)
@pytest.mark.parametrize("kind", ["settle", "refund", "write_off"])
async def test_an_ending_must_mirror_its_reservation(
    db: asyncpg.Connection, kind: str, change: dict[str, object]
) -> None:
    job = await reserved_job(db, amount=20)
    values: dict[str, object] = {"amount": 20, "period": PERIOD, "guild": 1, "user": 100}
    values.update(change)
    with pytest.raises(asyncpg.CheckViolationError, match="must match"):
        await add_row(
            db,
            kind,
            int(str(values["amount"])),
            job_id=job,
            period=str(values["period"]),
            guild=int(str(values["guild"])),
            user=int(str(values["user"])),
        )


async def test_an_ending_without_a_reservation_is_refused(db: asyncpg.Connection) -> None:
    await add_job(db, "j1")
    with pytest.raises(asyncpg.CheckViolationError, match="must match"):
        await add_row(db, "refund", 0, job_id="j1")


@pytest.mark.parametrize(
    ("kind", "amount", "job_id", "error"),
    [
        ("grant", 10, "j1", asyncpg.CheckViolationError),  # a grant names no job
        ("reserve", 10, None, asyncpg.CheckViolationError),  # a reservation names its job
        ("grant", -1, None, asyncpg.CheckViolationError),
        ("bonus", 10, None, asyncpg.CheckViolationError),
        ("reserve", 10, "nosuchjb", asyncpg.ForeignKeyViolationError),
    ],
    ids=["grant-with-job", "reserve-without-job", "negative", "unknown-kind", "unknown-job"],
)
async def test_the_ledger_refuses_malformed_rows(
    db: asyncpg.Connection, kind: str, amount: int, job_id: str | None, error: type[Exception]
) -> None:
    await add_job(db, "j1")
    with pytest.raises(error):
        await add_row(db, kind, amount, job_id=job_id)
    assert await db.fetchval("SELECT count(*) FROM ledger") == 0
    assert await db.fetchval("SELECT count(*) FROM ledger_day") == 0


async def test_a_refused_ending_leaves_the_sums_alone(db: asyncpg.Connection) -> None:
    job = await reserved_job(db)
    before = await pg_sums(db, _RUNNING)
    with pytest.raises(asyncpg.CheckViolationError):
        await add_row(db, "refund", 999, job_id=job)
    assert await pg_sums(db, _RUNNING) == before


# The running sums, against the ledger and against SQLite's schema.


MEMBERS = tuple((guild, user) for guild in (1, 2) for user in (10, 11, 12))


@dataclass
class Ledger:
    """A random but valid history of ledger rows, written alike to PostgreSQL and SQLite."""

    rng: random.Random
    jobs: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)  # open reservations
    ended: set[str] = field(default_factory=set)
    count: int = 0

    members: tuple[tuple[int, int], ...] = MEMBERS
    periods: tuple[str, ...] = (PERIOD, "2026-11-22")

    def step(self) -> list[tuple[str, tuple[object, ...]]]:
        """The next statements, as (SQL with ? marks, arguments)."""
        rng = self.rng
        guild, user = rng.choice(self.members)
        period = rng.choice(self.periods)
        action = rng.random()
        row = (
            "INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, actor_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0)"
        )
        if action < 0.4:
            self.count += 1
            job = f"job{self.count}"
            amount = rng.choice([0, 10, 20, 45])
            self.jobs[job] = (period, guild, user, amount)
            return [
                (
                    "INSERT INTO jobs (id, created_at, updated_at, state, mode, endpoint_id, "
                    "request_json, cost, guild_id, channel_id, user_id) "
                    "VALUES (?, 0, 0, 'queued', 'text', 'e', '{}', ?, ?, 5, ?)",
                    (job, amount, guild, user),
                ),
                (row, (NOW, period, guild, user, job, "reserve", amount)),
            ]
        if action < 0.65 and self.jobs:
            job = rng.choice(sorted(self.jobs))
            period, guild, user, amount = self.jobs.pop(job)
            self.ended.add(job)
            kind = rng.choice(["settle", "refund", "write_off"])
            return [
                ("UPDATE jobs SET state = 'delivered' WHERE id = ?", (job,)),
                (row, (NOW, period, guild, user, job, kind, amount)),
            ]
        if action < 0.8:
            # Several grants and resets in one statement, for several members and days.
            rows = [
                (NOW, rng.choice(self.periods), g, u, None, rng.choice(["grant", "reset"]), a)
                for g, u, a in (
                    (*rng.choice(self.members), rng.randint(0, 30))
                    for _ in range(rng.randint(1, 6))
                )
            ]
            marks = ", ".join("(?, ?, ?, ?, ?, ?, ?, 0)" for _ in rows)
            return [
                (
                    "INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, "
                    f"actor_id) VALUES {marks}",
                    tuple(v for r in rows for v in r),
                )
            ]
        if action < 0.92:
            return [(row, (NOW, period, guild, user, None, "grant", rng.randint(1, 30)))]
        # Forgetting the member, as `forget` does: rows of unfinished jobs stay theirs, so
        # their endings still match.
        return [
            (
                "UPDATE ledger SET user_id = 0, "
                "actor_id = CASE WHEN actor_id = ? THEN 0 ELSE actor_id END, "
                "note = CASE WHEN job_id IS NULL THEN '' ELSE note END "
                "WHERE guild_id = ? AND user_id = ? AND (job_id IS NULL OR job_id NOT IN "
                "(SELECT id FROM jobs WHERE state = 'queued'))",
                (user, guild, user),
            )
        ]


def numbered(sql: str) -> str:
    """SQLite's ? marks as PostgreSQL's $1, $2, ..."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))


async def test_running_sums_equal_the_ledger_sums_and_sqlite_s(db: asyncpg.Connection) -> None:
    lite = sqlite3.connect(":memory:", isolation_level=None)
    lite.execute("PRAGMA foreign_keys = ON")
    for migration in sqlite_migrations():
        lite.executescript(migration.sql)
    history = Ledger(random.Random(13))
    kinds: set[str] = set()
    forgets = 0
    for _ in range(300):
        for sql, args in history.step():
            await db.execute(numbered(sql), *args)
            lite.execute(sql, args)
            kinds.update(a for a in args if isinstance(a, str) and a in {"write_off", "reset"})
            forgets += sql.startswith("UPDATE ledger")
        running = await pg_sums(db, _RUNNING)
        assert running == await pg_sums(db, _RECOMPUTED)
        assert running == sqlite_sums(lite, _RUNNING)
    # The member rows of a forgotten member went, on both.
    members = "SELECT period, guild_id, user_id FROM ledger_member_day ORDER BY 1, 2, 3"
    assert [tuple(r) for r in await db.fetch(members)] == lite.execute(members).fetchall()
    assert history.ended
    assert kinds == {"write_off", "reset"}
    assert forgets


async def test_running_sums_hold_under_concurrent_writers(
    db: asyncpg.Connection, pg_dsn: str
) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=8, max_size=8)
    assert pool is not None
    # Each writer its own members' jobs (so endings stay valid), all writers the same servers
    # and days, so they contend for the same totals rows.
    histories = [
        Ledger(random.Random(seed), members=tuple((g, 100 * seed + u) for g, u in MEMBERS))
        for seed in range(8)
    ]

    async def write(writer: int) -> None:
        for _ in range(60):
            steps = histories[writer].step()
            async with pool.acquire() as conn, conn.transaction():
                for sql, args in steps:
                    # Job ids made unique across writers.
                    fixed = tuple(f"w{writer}{a}" if _is_job(a) else a for a in args)
                    await conn.execute(numbered(sql), *fixed)

    try:
        await asyncio.gather(*(write(writer) for writer in range(len(histories))))
    finally:
        await pool.close()
    assert await db.fetchval("SELECT count(*) FROM ledger") > 8 * 30
    assert await pg_sums(db, _RUNNING) == await pg_sums(db, _RECOMPUTED)


def _is_job(value: object) -> bool:
    return isinstance(value, str) and value.startswith("job") and value[3:].isdigit()
