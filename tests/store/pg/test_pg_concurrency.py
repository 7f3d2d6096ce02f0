"""Reservations at the same instant on PostgreSQL, from one process and from three, never pass
the member's allowance, their unfinished jobs, the server's budget or the global budget; and the
ledger's rows explain every balance and total afterwards."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bot.store import UNFINISHED_STATES, DayTotals, JobState, LedgerKind, QuotaExceeded
from bot.store.ledger import ENDINGS
from bot.store.postgres.store import PgStore
from tests.store.factories import PERIOD, FakeClock, limits, new_job
from tests.store.pg.scenarios import COST, SCENARIOS, Scenario, reserve_all

ROOT = Path(__file__).resolve().parents[3]
PROCESSES = 3
RESERVATIONS = 100

# Each table of running totals, its key, and how an auditor recomputes it from the ledger.
_TOTALS = (
    ("ledger_member_day", "period, guild_id, user_id"),
    ("ledger_guild_day", "period, guild_id"),
    ("ledger_day", "period"),
)
_KINDS = "reserves, settles, refunds, write_offs, grants, resets"
_SUMS = ", ".join(
    f"coalesce(sum(amount) FILTER (WHERE kind = '{kind}'), 0)"
    for kind in ("reserve", "settle", "refund", "write_off", "grant", "reset")
)


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PgStore]:
    # More connections than PostgreSQL needs to run the reservations truly side by side.
    async with await PgStore.open(pg_dsn, clock=FakeClock(), max_size=20) as opened:
        yield opened


async def assert_ledger_explains_everything(store: PgStore) -> None:
    """Every running total equals the sum of its ledger rows, and every member's balance is
    what their rows say."""
    async with store.database.read() as conn:
        for table, keys in _TOTALS:
            # Exactly the keys with ledger rows: a refused reservation's locked row, created
            # empty, went with its rolled-back transaction.
            kept = await conn.fetch(f"SELECT {keys}, {_KINDS} FROM {table} ORDER BY {keys}")
            summed = await conn.fetch(
                f"SELECT {keys}, {_SUMS} FROM ledger GROUP BY {keys} ORDER BY {keys}"
            )
            assert [tuple(r) for r in kept] == [tuple(r) for r in summed], table
        members = await conn.fetch("SELECT DISTINCT guild_id, user_id FROM ledger")
    for guild_id, user_id in members:
        rows = await store.ledger.for_member(guild_id, user_id, period=PERIOD)
        by_kind = {kind: sum(e.amount for e in rows if e.kind is kind) for kind in LedgerKind}
        expected = DayTotals(
            reserves=by_kind[LedgerKind.RESERVE],
            settles=by_kind[LedgerKind.SETTLE],
            refunds=by_kind[LedgerKind.REFUND],
            grants=by_kind[LedgerKind.GRANT],
            resets=by_kind[LedgerKind.RESET],
            write_offs=by_kind[LedgerKind.WRITE_OFF],
        ).balance(100)
        assert await store.ledger.balance(guild_id, user_id, period=PERIOD, allowance=100) == (
            expected
        )


async def assert_within(store: PgStore, scenario: Scenario, accepted: int) -> None:
    assert accepted == scenario.accepted
    assert await store.ledger.global_spend(PERIOD) == accepted * COST
    if scenario.name == "unfinished":
        assert await store.jobs.count_unfinished(scenario.user(0)) == scenario.limit
    if scenario.name == "server":
        assert await store.ledger.guild_spend(1, PERIOD) <= scenario.limit
    await assert_ledger_explains_everything(store)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_reservations_at_once_in_one_process_never_pass_the_limit(
    store: PgStore, name: str
) -> None:
    scenario = SCENARIOS[name]
    accepted, refused = await reserve_all(store, scenario, range(RESERVATIONS))
    assert refused == {scenario.refusal: RESERVATIONS - scenario.accepted}
    await assert_within(store, scenario, accepted)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_reservations_at_once_from_three_processes_never_pass_the_limit(
    store: PgStore, pg_dsn: str, name: str
) -> None:
    scenario = SCENARIOS[name]
    shares = [RESERVATIONS // PROCESSES + (i < RESERVATIONS % PROCESSES) for i in range(3)]
    starts = [sum(shares[:i]) for i in range(PROCESSES)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.store.pg.reserver",
            pg_dsn,
            name,
            str(first),
            str(count),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for first, count in zip(starts, shares, strict=True)
    ]
    try:
        for proc in procs:  # every process has its pool open before any reserves
            assert proc.stdout is not None
            assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        results = [
            json.loads((await asyncio.wait_for(proc.communicate(), 120))[0]) for proc in procs
        ]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert [proc.returncode for proc in procs] == [0] * PROCESSES
    accepted = sum(r["accepted"] for r in results)
    refused = sum(sum(r["refused"].values()) for r in results)
    assert {k for r in results for k in r["refused"]} <= {scenario.refusal}
    assert accepted + refused == RESERVATIONS
    await assert_within(store, scenario, accepted)


async def test_reservations_endings_grants_and_resets_at_once_leave_no_deadlock_and_balance(
    store: PgStore,
) -> None:
    rng = random.Random(13)
    members = [(guild, user) for guild in (1, 2) for user in (100, 101, 102)]
    held: list[str] = []

    async def reserve(guild: int, user: int) -> None:
        try:
            job = await store.jobs.create(
                new_job(user_id=user, guild_id=guild),
                cost=rng.randint(0, 9),
                actor_id=user,
                **limits(allowance=60, guild_budget=150, global_budget=250),
            )
        except QuotaExceeded:
            return
        held.append(job.id)

    async def end(job_id: str, outcome: LedgerKind) -> None:
        state = JobState.DELIVERED if outcome is LedgerKind.SETTLE else JobState.FAILED
        await store.jobs.finish(job_id, state, expected=UNFINISHED_STATES, outcome=outcome)

    for _ in range(4):  # rounds: each ends some of the jobs the rounds before reserved
        work: list[Coroutine[Any, Any, object]] = [reserve(*rng.choice(members)) for _ in range(40)]
        for job_id in rng.sample(held, len(held) // 2):
            work.append(end(job_id, rng.choice(sorted(ENDINGS))))
        for guild, user in rng.sample(members, 3):
            work.append(
                store.ledger.grant(guild, user, rng.randint(1, 5), period=PERIOD, actor_id=7)
            )
            work.append(store.ledger.reset_member(guild, user, period=PERIOD, actor_id=7))
        rng.shuffle(work)
        await asyncio.gather(*work)
    assert await store.ledger.global_spend(PERIOD) <= 250
    for guild in (1, 2):
        assert await store.ledger.guild_spend(guild, PERIOD) <= 150
    await assert_ledger_explains_everything(store)
