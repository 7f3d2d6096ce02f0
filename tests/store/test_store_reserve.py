"""Reservation: one atomic check of every limit, never passed even by 100 calls at once."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.store import (
    AllowanceExceeded,
    GlobalBudgetExceeded,
    GuildBudgetExceeded,
    Job,
    JobState,
    LedgerKind,
    MemberBlocked,
    QuotaExceeded,
    QuotaReason,
    Store,
    TooManyJobs,
)
from bot.store.jobs import INSERT_JOB_SQL

from .factories import PERIOD, FakeClock, limits, new_job, refund, settle


async def attempt(store: Store, user_id: int, guild_id: int, cost: int, **kw: Any) -> Job | str:
    try:
        return await store.jobs.create(
            new_job(user_id=user_id, guild_id=guild_id), cost=cost, actor_id=user_id, **limits(**kw)
        )
    except QuotaExceeded as refused:
        return refused.reason.value


def outcomes(results: list[Job | str]) -> Counter[str]:
    return Counter("accepted" if isinstance(r, Job) else r for r in results)


def ledger_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT guild_id, user_id, kind, amount FROM ledger").fetchall()


async def test_hundred_concurrent_jobs_of_one_member_stop_at_the_allowance(store: Store) -> None:
    results = await asyncio.gather(*(attempt(store, 100, 1, 20, allowance=100) for _ in range(100)))
    assert outcomes(results) == {"accepted": 5, "member_allowance": 95}
    balance = await store.ledger.balance(1, 100, period=PERIOD, allowance=100)
    assert (balance.used, balance.reserved, balance.left) == (100, 100, 0)
    assert len(await store.jobs.unfinished()) == 5


async def test_hundred_members_of_one_guild_stop_at_the_guild_budget(store: Store) -> None:
    results = await asyncio.gather(
        *(attempt(store, user, 1, 20, allowance=100, guild_budget=190) for user in range(100))
    )
    assert outcomes(results) == {"accepted": 9, "guild_budget": 91}
    assert await store.ledger.guild_spend(1, PERIOD) == 180


async def test_many_guilds_stop_at_the_global_budget(store: Store) -> None:
    results = await asyncio.gather(
        *(
            attempt(store, user, guild, 45, guild_budget=1_000, global_budget=500)
            for guild in range(10)
            for user in range(10)
        )
    )
    assert outcomes(results) == {"accepted": 11, "global_budget": 89}
    assert await store.ledger.global_spend(PERIOD) == 495
    per_guild = [await store.ledger.guild_spend(guild, PERIOD) for guild in range(10)]
    assert sum(per_guild) == 495


async def test_hundred_concurrent_jobs_stop_at_max_unfinished(store: Store) -> None:
    results = await asyncio.gather(
        *(attempt(store, 100, 1, 20, max_unfinished=2) for _ in range(100))
    )
    assert outcomes(results) == {"accepted": 2, "too_many_jobs": 98}


async def test_two_connections_on_one_file_share_the_limits(
    db_path: Path, clock: FakeClock
) -> None:
    # Two Store objects stand for two bot processes: SQLite's write lock must serialise them.
    first = await Store.open(db_path, clock=clock)
    second = await Store.open(db_path, clock=clock)
    async with first, second:
        results = await asyncio.gather(
            *(attempt(first if i % 2 else second, 100, 1, 20, allowance=100) for i in range(100))
        )
    assert outcomes(results) == {"accepted": 5, "member_allowance": 95}
    assert sorted(ledger_rows(db_path)) == [(1, 100, "reserve", 20)] * 5


async def test_refused_job_writes_nothing(store: Store) -> None:
    await store.rules.block_member(1, 100, actor_id=7)
    with pytest.raises(MemberBlocked):
        await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    assert await store.jobs.recent(100) == []
    assert await store.ledger.for_member(1, 100) == []


async def test_blocked_member_is_refused_with_a_readable_reason(store: Store) -> None:
    await store.rules.block_member(1, 100, actor_id=7, reason="spam")
    with pytest.raises(MemberBlocked, match="blocked") as refused:
        await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    assert refused.value.reason is QuotaReason.BLOCKED
    # The block is per server.
    assert isinstance(await attempt(store, 100, 2, 20), Job)


async def test_allowance_refusal_carries_cost_left_and_limit(store: Store) -> None:
    await store.jobs.create(new_job(), cost=45, actor_id=100, **limits(allowance=100))
    with pytest.raises(AllowanceExceeded) as refused:
        await store.jobs.create(new_job(), cost=90, actor_id=100, **limits(allowance=100))
    assert (refused.value.cost, refused.value.left, refused.value.limit) == (90, 55, 100)
    assert "90 credits" in str(refused.value)
    assert "55 left" in str(refused.value)


async def test_guild_budget_refusal_carries_what_is_left(store: Store) -> None:
    await store.jobs.create(new_job(user_id=1), cost=45, actor_id=1, **limits(guild_budget=100))
    with pytest.raises(GuildBudgetExceeded) as refused:
        await store.jobs.create(new_job(user_id=2), cost=90, actor_id=2, **limits(guild_budget=100))
    assert (refused.value.left, refused.value.limit) == (55, 100)


async def test_global_budget_refusal_counts_other_guilds(store: Store) -> None:
    await store.jobs.create(new_job(guild_id=1), cost=45, actor_id=100, **limits(global_budget=50))
    with pytest.raises(GlobalBudgetExceeded):
        await store.jobs.create(
            new_job(guild_id=2, user_id=5), cost=10, actor_id=5, **limits(global_budget=50)
        )


async def test_too_many_jobs_counts_only_unfinished_ones(store: Store) -> None:
    first = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits(max_unfinished=1))
    with pytest.raises(TooManyJobs, match="cancel"):
        await store.jobs.create(new_job(), cost=20, actor_id=100, **limits(max_unfinished=1))
    await store.jobs.finish(
        first.id, JobState.FAILED, expected=[JobState.QUEUED], outcome=LedgerKind.REFUND
    )
    assert isinstance(await attempt(store, 100, 1, 20, max_unfinished=1), Job)


async def test_refunded_credits_can_be_spent_again(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=100, actor_id=100, **limits(allowance=100))
    assert await attempt(store, 100, 1, 20, allowance=100) == "member_allowance"
    assert await refund(store, job.id, actor_id=0, note="fal failed")
    assert isinstance(await attempt(store, 100, 1, 100, allowance=100), Job)


async def test_settled_credits_stay_spent(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=100, actor_id=100, **limits(allowance=100))
    assert await settle(store, job.id)
    assert await attempt(store, 100, 1, 20, allowance=100) == "member_allowance"


async def test_each_day_has_its_own_allowance_and_budgets(store: Store) -> None:
    await store.jobs.create(new_job(), cost=100, actor_id=100, **limits(allowance=100))
    tomorrow = limits(allowance=100, guild_budget=100, global_budget=100, period="2026-11-22")
    job = await store.jobs.create(new_job(), cost=100, actor_id=100, **tomorrow)
    assert job.cost == 100


async def test_cancelled_reservation_leaves_the_store_consistent_and_usable(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Park the reservation between its job row and its ledger row, then cancel it there.
    inserted = asyncio.Event()
    real = store._db._db.execute_fetchall

    async def spy(sql: str, *args: Any, **kwargs: Any) -> Any:
        result = await real(sql, *args, **kwargs)
        if sql == INSERT_JOB_SQL and not inserted.is_set():
            inserted.set()
            await asyncio.Event().wait()
        return result

    monkeypatch.setattr(store._db._db, "execute_fetchall", spy)
    task = asyncio.create_task(store.jobs.create(new_job(), cost=20, actor_id=100, **limits()))
    await inserted.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    jobs = await store.jobs.recent(100)
    rows = await store.ledger.for_member(1, 100)
    assert len(rows) == len(jobs) <= 1  # all of it or none of it
    assert (jobs, rows) == ([], [])  # the job row written before the cancel was rolled back
    assert isinstance(await attempt(store, 100, 1, 20), Job)
