"""The running ledger sums (migration 0005) and the one-read glance before a job is accepted."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from bot.store import (
    DayTotals,
    JobState,
    LedgerKind,
    QuotaExceeded,
    Store,
    bundled_migrations,
)

from .factories import PERIOD, FakeClock, limits, new_job, refund

Sums = dict[tuple[object, ...], tuple[int, ...]]

_BY_KIND = """
    SUM(CASE kind WHEN 'reserve' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'settle' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'refund' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'grant' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'reset' THEN amount ELSE 0 END),
    SUM(CASE kind WHEN 'write_off' THEN amount ELSE 0 END)
"""
_KINDS = "reserves, settles, refunds, grants, resets, write_offs"


def _collect(conn: sqlite3.Connection, sql: str, keys: int) -> Sums:
    # A key whose sums are all zero (a reset of nothing) counts as no key at all.
    return {tuple(row[:keys]): tuple(row[keys:]) for row in conn.execute(sql) if any(row[keys:])}


def recomputed(path: Path) -> tuple[Sums, Sums, Sums]:
    """Member, server and day sums recomputed from the ledger rows, as an auditor would."""
    with sqlite3.connect(path) as conn:
        return (
            _collect(
                conn,
                f"SELECT period, guild_id, user_id, {_BY_KIND} FROM ledger "
                "GROUP BY period, guild_id, user_id",
                3,
            ),
            _collect(
                conn,
                f"SELECT period, guild_id, {_BY_KIND} FROM ledger GROUP BY period, guild_id",
                2,
            ),
            _collect(conn, f"SELECT period, {_BY_KIND} FROM ledger GROUP BY period", 1),
        )


def running(path: Path) -> tuple[Sums, Sums, Sums]:
    """The running sums as the store keeps them."""
    with sqlite3.connect(path) as conn:
        return (
            _collect(conn, f"SELECT period, guild_id, user_id, {_KINDS} FROM ledger_member_day", 3),
            _collect(conn, f"SELECT period, guild_id, {_KINDS} FROM ledger_guild_day", 2),
            _collect(conn, f"SELECT period, {_KINDS} FROM ledger_day", 1),
        )


def member_rows(path: Path, user_id: int) -> int:
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM ledger_member_day WHERE user_id = ?", (user_id,)
        ).fetchone()
    return int(row[0])


async def test_running_sums_always_equal_the_ledger_sums(db_path: Path, clock: FakeClock) -> None:
    rng = random.Random(5)
    periods = [PERIOD, "2026-11-22"]
    members = [(guild, user) for guild in (1, 2) for user in (10, 11, 12)]
    jobs = []
    refusals = forgotten = 0
    async with await Store.open(db_path, clock=clock) as store:
        for _ in range(250):
            clock.now += 3
            action = rng.random()
            guild, user = rng.choice(members)
            period = rng.choice(periods)
            if action < 0.45:
                try:
                    job = await store.jobs.create(
                        new_job(user_id=user, guild_id=guild),
                        cost=rng.choice([0, 10, 20, 45]),
                        actor_id=user,
                        **limits(allowance=120, guild_budget=500, global_budget=900, period=period),
                    )
                    jobs.append(job)
                except QuotaExceeded:
                    refusals += 1
            elif action < 0.7 and jobs:
                job = rng.choice(jobs)
                outcome = rng.choice([LedgerKind.SETTLE, LedgerKind.REFUND, LedgerKind.WRITE_OFF])
                state = JobState.DELIVERED if outcome is LedgerKind.SETTLE else JobState.FAILED
                await store.jobs.finish(
                    job.id, state, expected=[JobState.QUEUED], outcome=outcome, actor_id=0
                )
            elif action < 0.8 and jobs:
                await refund(store, rng.choice(jobs).id)
            elif action < 0.88:
                await store.ledger.grant(guild, user, rng.randint(1, 30), period=period, actor_id=1)
            elif action < 0.95:
                await store.ledger.reset_member(guild, user, period=period, actor_id=1)
            else:
                forgotten += (await store.meta.forget_member(guild, user)).ledger_rows
            assert running(db_path) == recomputed(db_path)
        # What the store answers is read from the running sums.
        for guild, user in members:
            for period in periods:
                balance = await store.ledger.balance(guild, user, period=period, allowance=120)
                glance = await store.rules.glance(guild, user, period=period)
                assert glance.day.balance(120) == balance
        # A write-off is given back to the member but stays in the server's and the day's spend.
        members_sums, guild_sums, day_sums = recomputed(db_path)
        for period in periods:
            day = day_sums.get((period,), (0, 0, 0, 0, 0, 0))
            assert await store.ledger.global_spend(period) == day[0] - day[2]
            for guild in (1, 2):
                sums = guild_sums.get((period, guild), (0, 0, 0, 0, 0, 0))
                assert await store.ledger.guild_spend(guild, period) == sums[0] - sums[2]
        for (day_name, guild_id, user_id), sums in members_sums.items():
            balance = await store.ledger.balance(
                int(str(guild_id)), int(str(user_id)), period=str(day_name), allowance=0
            )
            assert balance.used == sums[0] - sums[2] - sums[5]
        written_off = sum(sums[5] for sums in day_sums.values())
    assert jobs
    assert written_off  # write-offs were among the endings
    assert refusals  # the limits were reached
    assert forgotten  # rows were anonymised along the way, and the sums followed them


async def test_the_migration_fills_the_sums_from_an_existing_ledger(
    db_path: Path, clock: FakeClock
) -> None:
    before = [m for m in bundled_migrations() if m.version < 5]
    async with await Store.open(db_path, clock=clock, migrations=before):
        pass
    # Rows as the bot before 0005 wrote them (its create_job needs the new tables now).
    with sqlite3.connect(db_path) as conn:
        for job_id, guild, user in (("a", 1, 10), ("b", 2, 11), ("c", 1, 10)):
            conn.execute(
                "INSERT INTO jobs (id, created_at, updated_at, state, mode, endpoint_id, "
                "request_json, cost, guild_id, channel_id, user_id) "
                "VALUES (?, 0, 0, 'queued', 'text', 'e', '{}', 1, ?, 5, ?)",
                (job_id, guild, user),
            )
        conn.executemany(
            "INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, actor_id) "
            "VALUES (0, ?, ?, ?, ?, ?, ?, 0)",
            [
                (PERIOD, 1, 10, "a", "reserve", 30),
                (PERIOD, 2, 11, "b", "reserve", 20),
                (PERIOD, 1, 10, "a", "refund", 30),
                (PERIOD, 2, 11, "b", "settle", 20),
                (PERIOD, 1, 10, "c", "reserve", 5),
                ("2026-11-20", 1, 12, None, "grant", 7),
            ],
        )
    async with await Store.open(db_path, clock=clock) as store:
        assert await store.meta.schema_version() == bundled_migrations()[-1].version
        assert running(db_path) == recomputed(db_path)
        assert await store.ledger.guild_spend(1, PERIOD) == 5
        assert await store.ledger.guild_spend(2, PERIOD) == 20
        assert await store.ledger.global_spend(PERIOD) == 25
        balance = await store.ledger.balance(1, 10, period=PERIOD, allowance=100)
        assert (balance.used, balance.reserved, balance.left) == (5, 5, 95)


async def test_forgetting_a_member_leaves_their_id_in_no_sum(
    db_path: Path, clock: FakeClock
) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        done = await store.jobs.create(new_job(user_id=10), cost=30, actor_id=10, **limits())
        await store.jobs.finish(
            done.id, JobState.DELIVERED, expected=[JobState.QUEUED], outcome=LedgerKind.SETTLE
        )
        await store.ledger.grant(1, 10, 15, period=PERIOD, actor_id=1)
        spent = await store.ledger.guild_spend(1, PERIOD)
        await store.meta.forget_member(1, 10)
        assert member_rows(db_path, 10) == 0
        assert await store.ledger.guild_spend(1, PERIOD) == spent == 30
        assert (await store.ledger.balance(1, 0, period=PERIOD, allowance=0)).granted == 15
        assert running(db_path) == recomputed(db_path)


async def test_a_member_with_a_running_job_keeps_that_job_in_their_sums(
    db_path: Path, clock: FakeClock
) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        await store.jobs.create(new_job(user_id=10), cost=30, actor_id=10, **limits())
        await store.meta.forget_member(1, 10)
        balance = await store.ledger.balance(1, 10, period=PERIOD, allowance=100)
        assert balance.reserved == 30  # its refund or settle must still match the reservation
        assert running(db_path) == recomputed(db_path)


async def test_the_glance_answers_what_the_separate_reads_answer(store: Store) -> None:
    await store.rules.set_daily_budget(1, 400, actor_id=1)
    await store.rules.set_default_resolution(1, "1080p", actor_id=1)
    await store.rules.set_default_model(1, "text", "2.2", actor_id=1)
    await store.rules.allow_channel(1, 10, actor_id=1)
    await store.rules.add_blocked_word(1, "Zebra", actor_id=1)
    await store.rules.add_blocked_word(1, "apple", actor_id=1)
    await store.rules.set_role_limit(1, 7, 150, actor_id=1)
    await store.rules.set_role_limit(1, 8, 60, actor_id=1)
    job = await store.jobs.create(new_job(user_id=100), cost=45, actor_id=100, **limits())
    await store.jobs.create(new_job(user_id=200, guild_id=2), cost=20, actor_id=200, **limits())
    await refund(store, job.id)
    await store.jobs.create(new_job(user_id=100), cost=10, actor_id=100, **limits())
    await store.jobs.create(new_job(user_id=100), cost=0, actor_id=100, **limits())
    await store.ledger.grant(1, 100, 5, period=PERIOD, actor_id=1)

    glance = await store.rules.glance(1, 100, period=PERIOD)
    assert glance.settings == await store.rules.settings(1)
    assert glance.settings.blocklist == ("apple", "zebra")
    assert glance.settings.allowed_channels == frozenset({10})
    assert glance.settings.default_models == {"text": "2.2"}
    assert glance.blocked is False
    assert glance.unfinished == await store.jobs.count_unfinished(100) == 2  # one refunded, ended
    assert glance.allowance([7, 8], 100) == await store.rules.allowance(1, 100, [7, 8], 100) == 150
    assert glance.allowance([], 100) == 100
    assert glance.day.balance(150) == await store.ledger.balance(
        1, 100, period=PERIOD, allowance=150
    )
    assert glance.guild_spent == await store.ledger.guild_spend(1, PERIOD) == 10
    assert glance.global_spent == await store.ledger.global_spend(PERIOD) == 30

    await store.rules.set_member_limit(1, 100, 3, actor_id=1)
    await store.rules.block_member(1, 100, actor_id=1)
    glance = await store.rules.glance(1, 100, period=PERIOD)
    assert glance.blocked is True
    assert glance.allowance([7], 100) == 3


async def test_the_glance_of_a_server_that_set_nothing(store: Store) -> None:
    glance = await store.rules.glance(9, 900, period=PERIOD)
    assert glance.settings == await store.rules.settings(9)
    assert glance.settings.daily_budget is None
    assert (glance.blocked, glance.own_allowance, dict(glance.role_allowances)) == (False, None, {})
    assert (glance.unfinished, glance.guild_spent, glance.global_spent) == (0, 0, 0)
    assert glance.day == DayTotals()


async def test_the_glance_sees_a_commit_from_another_process_at_once(
    db_path: Path, clock: FakeClock
) -> None:
    async with (
        await Store.open(db_path, clock=clock) as reader,
        await Store.open(db_path, clock=clock) as writer,
    ):
        assert (await reader.rules.glance(1, 100, period=PERIOD)).guild_spent == 0
        await writer.jobs.create(new_job(user_id=100), cost=25, actor_id=100, **limits())
        await writer.rules.block_member(1, 100, actor_id=1)
        await writer.rules.add_blocked_word(1, "owl", actor_id=1)
        glance = await reader.rules.glance(1, 100, period=PERIOD)
        assert (glance.guild_spent, glance.unfinished, glance.blocked) == (25, 1, True)
        assert glance.settings.blocklist == ("owl",)
