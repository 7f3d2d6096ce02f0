"""Benchmark 6: quota reservations per second on SQLite (WAL), one member and many, no overspend."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite

from bench.harness import REPO
from bench.stats import median, show, verdict
from bot.store import NewJob, QuotaExceeded, Store, allowance_period

GUILD = 1
CHANNEL = 2
COST = 10
REQUEST = json.dumps({"mode": "text", "prompt": "a red fox"})


def new_job(user_id: int) -> NewJob:
    return NewJob(
        mode="text",
        endpoint_id="fal-ai/pika/v2.5/text-to-video",
        request_json=REQUEST,
        guild_id=GUILD,
        channel_id=CHANNEL,
        user_id=user_id,
    )


async def reserve(store: Store, user_id: int, allowance: int) -> bool:
    """One reservation as the bot makes it (store.jobs.create); False if refused."""
    try:
        await store.jobs.create(
            new_job(user_id),
            cost=COST,
            allowance=allowance,
            guild_budget=10**9,
            global_budget=10**9,
            max_unfinished=10**6,
            period=allowance_period(time.time()),
            actor_id=user_id,
        )
    except QuotaExceeded:
        return False
    return True


async def hammer(path: Path, users: list[int], allowance: int, tasks: int) -> tuple[int, float]:
    """Every attempt in `users` (one entry per attempt) from `tasks` concurrent tasks.

    Returns (accepted, seconds).
    """
    store = await Store.open(path)
    queue = list(reversed(users))
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        while queue:
            if await reserve(store, queue.pop(), allowance):
                accepted += 1

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(tasks)))
        return accepted, time.perf_counter() - started
    finally:
        await store.close()


async def spent(path: Path) -> dict[int, int]:
    """Reserved credits per member, straight from the ledger."""
    async with aiosqlite.connect(path) as db:
        rows = await db.execute_fetchall(
            "SELECT user_id, SUM(amount) FROM ledger WHERE kind = 'reserve' GROUP BY user_id"
        )
    return {int(user): int(total) for user, total in rows}


async def floor(path: Path, count: int) -> float:
    """The same pragmas and one INSERT per committed transaction: SQLite's own ceiling here."""
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = FULL")
        await db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        started = time.perf_counter()
        for n in range(count):
            await db.execute("BEGIN IMMEDIATE")
            await db.execute("INSERT INTO t (v) VALUES (?)", (str(n),))
            await db.execute("COMMIT")
        return count / (time.perf_counter() - started)


async def other_processes(
    path: Path, processes: int, user: int, attempts: int, allowance: int
) -> int:
    """Several processes reserving for one member on the same file; accepted in all."""
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.quota",
            str(path),
            str(user),
            str(attempts),
            str(allowance),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    outputs = [await child.communicate() for child in children]
    return sum(int(out.decode().split()[0]) for out, _ in outputs)


async def run(*, quick: bool, reps: int) -> dict[str, Any]:
    attempts = 300 if quick else 2000
    one_rates: list[float] = []
    many_rates: list[float] = []
    floor_rates: list[float] = []
    overspend = 0
    with tempfile.TemporaryDirectory(prefix="pikabot-bench-quota-") as tmp:
        for rep in range(reps):
            folder = Path(tmp) / str(rep)
            folder.mkdir()
            db = folder / "pikabot.sqlite3"
            await (await Store.open(db)).close()
            # One member, 50 concurrent commands, credits for half of the attempts.
            allowance = attempts // 2 * COST
            accepted, took = await hammer(db, [7] * attempts, allowance, tasks=50)
            one_rates.append(attempts / took)
            over_one = max(0, (await spent(db)).get(7, 0) - allowance)
            # Many members, two attempts each, credits for one: every second one is refused.
            users = [1000 + n // 2 for n in range(attempts)]
            accepted_many, took = await hammer(db, users, COST, tasks=50)
            many_rates.append(attempts / took)
            totals = await spent(db)
            over_many = sum(max(0, totals.get(u, 0) - COST) for u in set(users))
            # Two more processes on the same file, one member, beside this one.
            allowance_x = attempts // 4 * COST
            accepted_x = await other_processes(db, 2, 8, attempts // 4, allowance_x)
            accepted_x += (await hammer(db, [8] * (attempts // 4), allowance_x, tasks=10))[0]
            over_x = max(0, (await spent(db)).get(8, 0) - allowance_x)
            overspend += over_one + over_many + over_x
            floor_rates.append(await floor(folder / "floor.sqlite3", attempts // 2))
            print(
                f"  rep {rep + 1}: one member {one_rates[-1]:,.0f}/s ({accepted} of {attempts} "
                f"accepted, overspend {over_one}); many members {many_rates[-1]:,.0f}/s "
                f"({accepted_many} accepted, overspend {over_many}); 3 processes on one member: "
                f"{accepted_x} accepted for {attempts // 4} credits' worth, overspend {over_x}; "
                f"bare INSERT+COMMIT {floor_rates[-1]:,.0f}/s",
                flush=True,
            )
    one, many, bare = median(one_rates), median(many_rates), median(floor_rates)
    show(
        f"6. Quota reservations on SQLite WAL, synchronous=FULL ({attempts} attempts, "
        f"50 concurrent; medians of {reps})",
        [
            ("one member, attempts/s (half refused)", one),
            ("many members, attempts/s (half refused)", many),
            ("bare BEGIN IMMEDIATE + INSERT + COMMIT /s", bare),
            ("one member / bare", one / bare),
            ("many members / bare", many / bare),
            ("credits overspent (all runs, 3 scenarios)", overspend),
            ("target >= 1,000/s", verdict(min(one, many) >= 1000)),
            ("target zero overspend", verdict(overspend == 0)),
        ],
    )
    return {"one_member_per_s": one, "many_members_per_s": many, "overspend": overspend}


def _child() -> None:
    path, user, attempts, allowance = sys.argv[1], *map(int, sys.argv[2:5])
    accepted, _ = asyncio.run(hammer(Path(path), [user] * attempts, allowance, tasks=10))
    print(accepted)


if __name__ == "__main__":
    _child()
