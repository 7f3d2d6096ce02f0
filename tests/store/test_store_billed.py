"""Write-offs (migration 0006): a run fal may have billed is given back to the member but keeps
counting against the server's and the operator's budgets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.store import GlobalBudgetExceeded, GuildBudgetExceeded, JobState, LedgerKind, Store
from bot.store import bundled_migrations as migrations

from .factories import PERIOD, FakeClock, limits, new_job, refund, settle


async def write_off(store: Store, cost: int, **kw: object) -> str:
    job = await store.jobs.create(new_job(), cost=cost, actor_id=100, **limits(**kw))
    moved = await store.jobs.finish(
        job.id,
        JobState.FAILED,
        expected={JobState.QUEUED},
        outcome=LedgerKind.WRITE_OFF,
        note="fal_no_answer",
    )
    assert moved
    return job.id


async def test_a_write_off_gives_the_member_everything_back(store: Store) -> None:
    job_id = await write_off(store, 20)
    balance = await store.ledger.balance(1, 100, period=PERIOD, allowance=100)
    assert (balance.used, balance.reserved, balance.left) == (0, 0, 100)
    assert [e.kind for e in await store.ledger.for_job(job_id)] == ["reserve", "write_off"]


async def test_a_write_off_keeps_counting_in_the_server_and_day_spend(store: Store) -> None:
    await write_off(store, 20)
    assert await store.ledger.guild_spend(1, PERIOD) == 20
    assert await store.ledger.global_spend(PERIOD) == 20
    glance = await store.rules.glance(1, 100, period=PERIOD)
    assert (glance.guild_spent, glance.global_spent) == (20, 20)


async def test_written_off_runs_fill_the_server_budget(store: Store) -> None:
    await write_off(store, 30, guild_budget=50)
    with pytest.raises(GuildBudgetExceeded):
        await store.jobs.create(
            new_job(user_id=200), cost=30, actor_id=200, **limits(guild_budget=50)
        )


async def test_written_off_runs_fill_the_global_budget(store: Store) -> None:
    await write_off(store, 30, global_budget=50)
    with pytest.raises(GlobalBudgetExceeded):
        await store.jobs.create(
            new_job(guild_id=2, user_id=200), cost=30, actor_id=200, **limits(global_budget=50)
        )


async def test_a_written_off_reservation_cannot_also_be_refunded_or_settled(store: Store) -> None:
    job_id = await write_off(store, 20)
    assert not await refund(store, job_id)
    assert not await settle(store, job_id)
    assert [e.kind for e in await store.ledger.for_job(job_id)] == ["reserve", "write_off"]


async def test_usage_shows_write_offs_as_spend_but_not_as_the_members(store: Store) -> None:
    await write_off(store, 20)
    (day,) = await store.ledger.spend_per_day(1)
    assert (day.spent, day.refunded, day.written_off, day.jobs) == (20, 0, 20, 1)
    assert await store.ledger.top_members(1, PERIOD) == []


async def test_the_ledger_stays_append_only_after_the_rebuild(
    db_path: Path, clock: FakeClock
) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        await write_off(store, 20)
    with sqlite3.connect(db_path) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE ledger SET amount = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM ledger")
        with pytest.raises(sqlite3.IntegrityError, match="must match"):
            conn.execute(
                "INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, "
                "actor_id) SELECT 0, period, guild_id, user_id, job_id, 'write_off', 5, 0 "
                "FROM ledger WHERE kind = 'reserve'"
            )


async def test_the_migration_keeps_every_row_id_and_sum(db_path: Path, clock: FakeClock) -> None:
    before = [m for m in migrations() if m.version < 6]
    async with await Store.open(db_path, clock=clock, migrations=before):
        pass
    # Rows as the bot before 0006 wrote them.
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO jobs (id, created_at, updated_at, state, mode, endpoint_id, "
            "request_json, cost, guild_id, channel_id, user_id) "
            "VALUES ('a', 0, 0, 'delivered', 'text', 'e', '{}', 30, 1, 5, 100)"
        )
        conn.executemany(
            "INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, actor_id) "
            "VALUES (0, ?, 1, 100, ?, ?, ?, 0)",
            [(PERIOD, "a", "reserve", 30), (PERIOD, "a", "settle", 30), (PERIOD, None, "grant", 5)],
        )
    async with await Store.open(db_path, clock=clock) as store:
        assert await store.meta.schema_version() == 6
        rows = await store.ledger.for_member(1, 100)
        assert [(e.id, e.kind, e.amount) for e in rows] == [
            (1, LedgerKind.RESERVE, 30),
            (2, LedgerKind.SETTLE, 30),
            (3, LedgerKind.GRANT, 5),
        ]
        assert await store.ledger.guild_spend(1, PERIOD) == 30
        job_id = await write_off(store, 20)
        ids = [e.id for e in await store.ledger.for_job(job_id)]
        assert ids == [4, 5]  # ids go on where they stopped
        balance = await store.ledger.balance(1, 100, period=PERIOD, allowance=100)
        assert (balance.used, balance.granted) == (30, 5)
        assert await store.ledger.guild_spend(1, PERIOD) == 50
