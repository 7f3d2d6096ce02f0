"""A reservation cancelled midway on PostgreSQL: the PostgreSQL half of the store test that
stops a write between its job row and its ledger row (SQLite's reaches into aiosqlite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from bot.store import Job, StoreBackend, open_store
from tests.store.factories import FakeClock, limits, new_job


@pytest.fixture
async def pg_store(pg_dsn: str) -> AsyncIterator[StoreBackend]:
    async with await open_store(pg_dsn, clock=FakeClock()) as store:
        yield store


async def test_cancelled_reservation_leaves_the_store_consistent_and_usable(
    pg_store: StoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Park the reservation after its job row is written, before its ledger row, and cancel it.
    inserted = asyncio.Event()
    real = asyncpg.connection.Connection.fetchrow

    async def spy(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        row = await real(self, query, *args, **kwargs)
        if "INSERT INTO jobs" in query and not inserted.is_set():
            inserted.set()
            await asyncio.Event().wait()
        return row

    monkeypatch.setattr(asyncpg.connection.Connection, "fetchrow", spy)
    job = new_job()
    task = asyncio.create_task(pg_store.jobs.create(job, cost=20, actor_id=100, **limits()))
    await inserted.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    monkeypatch.undo()
    # The job row written before the cancel was rolled back with the rest.
    assert await pg_store.jobs.recent(100) == []
    assert await pg_store.ledger.for_member(1, 100) == []
    accepted = await pg_store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    assert isinstance(accepted, Job)
