"""The credit ledger: append-only, one ending per reservation, and sums that explain balances."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest

from bot.store import (
    Balance,
    JobState,
    LedgerEntry,
    LedgerKind,
    QuotaExceeded,
    Store,
    allowance_period,
    next_reset,
)

from .factories import PERIOD, FakeClock, limits, new_job, refund, settle


def explain(rows: list[LedgerEntry], allowance: int) -> Balance:
    """A balance recomputed by hand from ledger rows, the way an auditor would."""
    total: dict[LedgerKind, int] = defaultdict(int)
    for row in rows:
        total[row.kind] += row.amount
    used = total[LedgerKind.RESERVE] - total[LedgerKind.REFUND]
    granted = total[LedgerKind.GRANT] + total[LedgerKind.RESET]
    return Balance(
        allowance=allowance,
        granted=granted,
        used=used,
        reserved=total[LedgerKind.RESERVE] - total[LedgerKind.SETTLE] - total[LedgerKind.REFUND],
        left=allowance + granted - used,
    )


async def test_settle_happens_once_and_excludes_refund(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    assert await settle(store, job.id, actor_id=0)
    assert not await settle(store, job.id, actor_id=0)
    assert not await refund(store, job.id, actor_id=0)
    kinds = [row.kind for row in await store.ledger.for_job(job.id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.SETTLE]


async def test_refund_happens_once_and_excludes_settle(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    assert await refund(store, job.id, actor_id=9, note="cancelled")
    assert not await refund(store, job.id, actor_id=9)
    assert not await settle(store, job.id)
    rows = await store.ledger.for_job(job.id)
    assert [(r.kind, r.amount, r.actor_id, r.note) for r in rows] == [
        (LedgerKind.RESERVE, 20, 100, ""),
        (LedgerKind.REFUND, 20, 9, "cancelled"),
    ]


async def test_concurrent_endings_leave_exactly_one(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    results = await asyncio.gather(
        *(settle(store, job.id) if i % 2 else refund(store, job.id) for i in range(20))
    )
    assert results.count(True) == 1
    assert len(await store.ledger.for_job(job.id)) == 2


async def test_ending_an_unknown_job_does_nothing(store: Store) -> None:
    assert not await settle(store, "nosuchjb")
    assert not await refund(store, "nosuchjb")


async def test_refund_lands_in_the_day_of_its_reservation(store: Store, clock: FakeClock) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    clock.now += 86_400  # the refund happens the next day
    assert await refund(store, job.id)
    ending = (await store.ledger.for_job(job.id))[-1]
    assert (ending.period, ending.ts) == (PERIOD, clock.now)
    balance = await store.ledger.balance(1, 100, period=PERIOD, allowance=100)
    assert (balance.used, balance.reserved, balance.left) == (0, 0, 100)
    assert await store.ledger.guild_spend(1, PERIOD) == 0


async def test_grant_adds_credits_for_the_day(store: Store) -> None:
    entry = await store.ledger.grant(1, 100, 30, period=PERIOD, actor_id=7, note="contest winner")
    assert (entry.kind, entry.amount, entry.actor_id, entry.job_id) == (
        LedgerKind.GRANT,
        30,
        7,
        None,
    )
    balance = await store.ledger.balance(1, 100, period=PERIOD, allowance=100)
    assert (balance.granted, balance.left) == (30, 130)
    other_day = await store.ledger.balance(1, 100, period="2026-11-22", allowance=100)
    assert other_day.left == 100


async def test_grant_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await store.ledger.grant(1, 100, 0, period=PERIOD, actor_id=7)


async def test_reset_credits_back_what_was_charged(store: Store) -> None:
    for _ in range(3):
        job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits(allowance=100))
        await settle(store, job.id)
    entry = await store.ledger.reset_member(1, 100, period=PERIOD, actor_id=7)
    assert (entry.kind, entry.amount) == (LedgerKind.RESET, 60)
    assert (await store.ledger.balance(1, 100, period=PERIOD, allowance=100)).left == 100
    # A second reset credits only what was charged since the first.
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits(allowance=100))
    await settle(store, job.id)
    again = await store.ledger.reset_member(1, 100, period=PERIOD, actor_id=7)
    assert again.amount == 20
    assert (await store.ledger.balance(1, 100, period=PERIOD, allowance=100)).left == 100


async def test_reset_never_credits_held_credits_twice(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits(allowance=100))
    entry = await store.ledger.reset_member(1, 100, period=PERIOD, actor_id=7)
    assert entry.amount == 0
    assert (await store.ledger.balance(1, 100, period=PERIOD, allowance=100)).left == 80
    # The held credits come back through the job's own refund, once.
    assert await refund(store, job.id)
    assert (await store.ledger.balance(1, 100, period=PERIOD, allowance=100)).left == 100


async def test_reset_does_not_lift_the_guild_budget(store: Store) -> None:
    await store.jobs.create(new_job(), cost=100, actor_id=100, **limits(guild_budget=100))
    await store.ledger.reset_member(1, 100, period=PERIOD, actor_id=7)
    with pytest.raises(QuotaExceeded) as refused:
        await store.jobs.create(new_job(), cost=20, actor_id=100, **limits(guild_budget=100))
    assert refused.value.reason.value == "guild_budget"


async def test_ledger_refuses_update_and_delete(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    with sqlite3.connect(db_path) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE ledger SET amount = 0")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM ledger")
        assert conn.execute("SELECT amount FROM ledger").fetchall() == [(20,)]


async def test_ledger_refuses_an_ending_that_does_not_match_its_reservation(
    db_path: Path, clock: FakeClock
) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    with sqlite3.connect(db_path) as conn, pytest.raises(sqlite3.IntegrityError, match="match"):
        conn.execute(
            "INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, actor_id) "
            "VALUES (1, ?, 1, 100, ?, 'refund', 999, 0)",
            (PERIOD, job.id),
        )


async def test_ledger_sums_explain_every_balance(store: Store, clock: FakeClock) -> None:
    rng = random.Random(20261121)
    periods = [PERIOD, "2026-11-22"]
    members = [(guild, user) for guild in (1, 2) for user in (10, 11, 12)]
    allowance = 150
    jobs = []
    refusals = 0
    for _ in range(300):
        clock.now += 7
        action = rng.random()
        guild, user = rng.choice(members)
        period = rng.choice(periods)
        if action < 0.5:
            try:
                job = await store.jobs.create(
                    new_job(user_id=user, guild_id=guild),
                    cost=rng.choice([10, 20, 45, 90]),
                    actor_id=user,
                    **limits(
                        allowance=allowance, guild_budget=600, global_budget=1000, period=period
                    ),
                )
                jobs.append(job)
            except QuotaExceeded:
                refusals += 1
        elif action < 0.8 and jobs:
            job = rng.choice(jobs)
            await (settle(store, job.id) if rng.random() < 0.5 else refund(store, job.id))
        elif action < 0.9:
            await store.ledger.grant(guild, user, rng.randint(1, 50), period=period, actor_id=1)
        else:
            await store.ledger.reset_member(guild, user, period=period, actor_id=1)

    assert jobs
    assert refusals  # the limits were reached, so the refusal paths are exercised too
    for guild, user in members:
        rows = await store.ledger.for_member(guild, user)
        for period in periods:
            in_period = [r for r in rows if r.period == period]
            stored = await store.ledger.balance(guild, user, period=period, allowance=allowance)
            assert stored == explain(in_period, allowance)
            assert stored.left >= 0  # reservations never overspent the member
            held = [j for j in jobs if j.guild_id == guild and j.user_id == user]
            held_cost = 0
            for job in held:
                job_rows = await store.ledger.for_job(job.id)
                assert job_rows[0].kind is LedgerKind.RESERVE
                assert len(job_rows) <= 2
                if len(job_rows) == 1 and job_rows[0].period == period:
                    held_cost += job.cost
            assert stored.reserved == held_cost
    for period in periods:
        total = 0
        for guild in (1, 2):
            spent = await store.ledger.guild_spend(guild, period)
            assert 0 <= spent <= 600
            total += spent
        assert total == await store.ledger.global_spend(period) <= 1000


async def test_finish_job_moves_and_settles_together(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    moved = await store.jobs.finish(
        job.id, JobState.DELIVERED, expected=[JobState.QUEUED], outcome=LedgerKind.SETTLE
    )
    assert moved
    again = await store.jobs.finish(
        job.id, JobState.FAILED, expected=[JobState.QUEUED], outcome=LedgerKind.REFUND
    )
    assert not again
    assert [r.kind for r in await store.ledger.for_job(job.id)] == [
        LedgerKind.RESERVE,
        LedgerKind.SETTLE,
    ]


async def test_finish_job_without_outcome_keeps_the_reservation(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    await store.jobs.transition(job.id, JobState.SUBMITTING, expected=[JobState.QUEUED])
    assert await store.jobs.finish(
        job.id, JobState.UNKNOWN, expected=[JobState.SUBMITTING], outcome=None
    )
    assert (await store.ledger.balance(1, 100, period=PERIOD, allowance=100)).reserved == 20


async def test_finish_job_needs_a_terminal_state(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    with pytest.raises(ValueError, match="terminal"):
        await store.jobs.finish(
            job.id, JobState.RUNNING, expected=[JobState.QUEUED], outcome=LedgerKind.SETTLE
        )


async def test_usage_reports_spend_per_day_and_top_members(store: Store) -> None:
    a = await store.jobs.create(new_job(user_id=1), cost=45, actor_id=1, **limits())
    await store.jobs.create(new_job(user_id=2), cost=20, actor_id=2, **limits())
    refunded = await store.jobs.create(new_job(user_id=2), cost=10, actor_id=2, **limits())
    await store.jobs.create(new_job(user_id=1), cost=90, actor_id=1, **limits(period="2026-11-20"))
    await settle(store, a.id)
    await refund(store, refunded.id)
    days = await store.ledger.spend_per_day(1)
    assert [(d.period, d.spent, d.settled, d.refunded, d.jobs) for d in days] == [
        (PERIOD, 65, 45, 10, 3),
        ("2026-11-20", 90, 0, 0, 1),
    ]
    top = await store.ledger.top_members(1, PERIOD)
    assert [(m.user_id, m.spent, m.jobs) for m in top] == [(1, 45, 1), (2, 20, 2)]


@pytest.mark.parametrize(
    ("iso", "reset_hour", "period", "reset_iso"),
    [
        ("2026-11-21T00:00:00+00:00", 0, "2026-11-21", "2026-11-22T00:00:00+00:00"),
        ("2026-11-21T23:59:59+00:00", 0, "2026-11-21", "2026-11-22T00:00:00+00:00"),
        ("2026-11-22T05:59:59+00:00", 6, "2026-11-21", "2026-11-22T06:00:00+00:00"),
        ("2026-11-22T06:00:00+00:00", 6, "2026-11-22", "2026-11-23T06:00:00+00:00"),
        ("2026-12-31T23:30:00+00:00", 23, "2026-12-31", "2027-01-01T23:00:00+00:00"),
    ],
)
def test_allowance_day_and_next_reset(
    iso: str, reset_hour: int, period: str, reset_iso: str
) -> None:
    from datetime import datetime

    now = datetime.fromisoformat(iso).timestamp()
    assert allowance_period(now, reset_hour) == period
    assert next_reset(now, reset_hour) == int(datetime.fromisoformat(reset_iso).timestamp())


def test_reset_hour_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="0 to 23"):
        allowance_period(0, 24)
