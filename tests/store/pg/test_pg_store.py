"""PgStore opened on a real PostgreSQL: a job's whole life, from its reservation to its ending,
through the same table groups and with the same answers as the SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.store import (
    UNFINISHED_STATES,
    AllowanceExceeded,
    JobState,
    LedgerKind,
    MemberBlocked,
    TooManyJobs,
)
from bot.store.postgres import jobs as pg_jobs
from bot.store.postgres import ledger as pg_ledger
from bot.store.postgres.schema import bundled_migrations
from bot.store.postgres.store import PgStore
from tests.store.factories import PERIOD, T0, FakeClock, limits, new_job


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PgStore]:
    async with await PgStore.open(pg_dsn, clock=FakeClock()) as opened:
        yield opened


async def test_opening_migrates_and_the_path_has_no_password(store: PgStore) -> None:
    assert await store.meta.schema_version() == bundled_migrations()[-1].version
    assert store.path.startswith("postgresql://")


async def test_a_job_lives_from_reservation_to_settle(store: PgStore) -> None:
    job = await store.jobs.create(new_job(), cost=30, actor_id=100, **limits(allowance=100))
    assert job.state is JobState.QUEUED
    assert job.request["prompt"] == "a cat surfing"
    assert await store.jobs.get(job.id) == job
    assert await store.jobs.count_unfinished(100) == 1
    assert [j.id for j in await store.jobs.unfinished()] == [job.id]
    balance = await store.ledger.balance(1, 100, period=PERIOD, allowance=100)
    assert (balance.used, balance.reserved, balance.left) == (30, 30, 70)

    moved = await store.jobs.transition(
        job.id, JobState.SUBMITTED, expected={JobState.QUEUED}, fal_request_id="req-1"
    )
    assert moved
    assert not await store.jobs.transition(job.id, JobState.SUBMITTED, expected={JobState.QUEUED})
    submitted = await store.jobs.get(job.id)
    assert submitted is not None
    assert (submitted.fal_request_id, submitted.submitted_at) == ("req-1", T0)
    assert await store.jobs.update(job.id, fal_queue_position=3)

    assert await store.jobs.finish(
        job.id, JobState.DELIVERED, expected=UNFINISHED_STATES, outcome=LedgerKind.SETTLE
    )
    assert not await store.jobs.finish(
        job.id, JobState.FAILED, expected=UNFINISHED_STATES, outcome=LedgerKind.REFUND
    )
    kinds = [e.kind for e in await store.ledger.for_job(job.id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.SETTLE]
    balance = await store.ledger.balance(1, 100, period=PERIOD, allowance=100)
    assert (balance.used, balance.reserved, balance.left) == (30, 0, 70)
    assert await store.ledger.guild_spend(1, PERIOD) == 30
    assert await store.ledger.global_spend(PERIOD) == 30
    assert [
        (d.period, d.spent, d.settled, d.jobs) for d in await store.ledger.spend_per_day(1)
    ] == [(PERIOD, 30, 30, 1)]
    assert [(m.user_id, m.spent) for m in await store.ledger.top_members(1, PERIOD)] == [(100, 30)]
    finished = await store.jobs.get(job.id)
    assert finished is not None
    assert finished.finished_at == T0
    assert await store.jobs.counts() == {("text", "delivered"): 1}


async def test_a_refund_and_a_reset_give_credits_back(store: PgStore) -> None:
    first = await store.jobs.create(new_job(), cost=40, actor_id=100, **limits(allowance=100))
    second = await store.jobs.create(new_job(), cost=40, actor_id=100, **limits(allowance=100))
    with pytest.raises(AllowanceExceeded):
        await store.jobs.create(new_job(), cost=40, actor_id=100, **limits(allowance=100))
    await store.jobs.finish(
        first.id, JobState.DELIVERED, expected=UNFINISHED_STATES, outcome=LedgerKind.SETTLE
    )
    await store.jobs.finish(
        second.id,
        JobState.FAILED,
        expected=UNFINISHED_STATES,
        outcome=LedgerKind.REFUND,
        error_code="fal_error",
    )
    assert await store.jobs.failure_counts(1, since=T0) == {"fal_error": 1}
    reset = await store.ledger.reset_member(1, 100, period=PERIOD, actor_id=7, note="sorry")
    assert (reset.kind, reset.amount) == (LedgerKind.RESET, 40)
    grant = await store.ledger.grant(1, 100, 5, period=PERIOD, actor_id=7)
    assert grant.amount == 5
    balance = await store.ledger.balance(1, 100, period=PERIOD, allowance=100)
    assert balance.left == 105
    assert [a.action for a in await store.audit.log(1)] == ["grant", "reset"]
    assert [e.kind for e in await store.ledger.for_member(1, 100, period=PERIOD)] == [
        LedgerKind.RESERVE,
        LedgerKind.RESERVE,
        LedgerKind.SETTLE,
        LedgerKind.REFUND,
        LedgerKind.RESET,
        LedgerKind.GRANT,
    ]


async def test_the_newest_job_comes_first_among_jobs_of_one_second(store: PgStore) -> None:
    ids = [
        (await store.jobs.create(new_job(guild_id=g), cost=1, actor_id=100, **limits())).id
        for g in (1, 2, 1)
    ]
    assert [j.id for j in await store.jobs.recent(100)] == ids[::-1]
    assert [j.id for j in await store.jobs.recent(100, guild_id=1)] == [ids[2], ids[0]]
    newest = await store.jobs.newest_unfinished(100, guild_id=2)
    assert newest is not None
    assert newest.id == ids[1]
    assert [j.id for j in await store.jobs.unfinished()] == ids


async def test_blocked_and_busy_members_are_refused(store: PgStore) -> None:
    await store.jobs.create(new_job(), cost=1, actor_id=100, **limits(max_unfinished=1))
    with pytest.raises(TooManyJobs):
        await store.jobs.create(
            new_job(guild_id=2), cost=1, actor_id=100, **limits(max_unfinished=1)
        )
    await store.rules.block_member(1, 101, actor_id=7)
    with pytest.raises(MemberBlocked):
        await store.jobs.create(new_job(user_id=101), cost=1, actor_id=101, **limits())
    assert await store.jobs.count_unfinished(101) == 0


async def test_a_reservation_cancelled_midway_leaves_nothing_and_the_store_usable(
    store: PgStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Park the reservation between its job row and its ledger row, then cancel it there.
    inserted = asyncio.Event()
    real = pg_ledger.append

    async def parked(*args: Any) -> Any:
        if not inserted.is_set():
            inserted.set()
            await asyncio.Event().wait()
        return await real(*args)

    monkeypatch.setattr(pg_jobs, "append", parked)
    task = asyncio.create_task(store.jobs.create(new_job(), cost=20, actor_id=100, **limits()))
    await inserted.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.jobs.recent(100) == []  # the job row written before the cancel went too
    assert await store.ledger.for_member(1, 100) == []
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    assert [e.kind for e in await store.ledger.for_job(job.id)] == [LedgerKind.RESERVE]
