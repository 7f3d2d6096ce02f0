"""The retention and forgetting tests of tests/jobs/test_retention.py, run unchanged on a bot
whose store is PostgreSQL: Retention reaches the store only through `meta.forget_member` and
`meta.expire_jobs`, so the same answers must come from both backends."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs.retention import Retention
from bot.media import InputCache
from bot.store.postgres.store import PgStore
from tests.jobs import test_retention
from tests.jobs.test_retention import HOUR, Bot
from tests.store.factories import FakeClock

# Every test of that module that runs on its `bot`, except the one that opens SQLite's file
# to show its ledger refusing changes (PostgreSQL's refusals: test_pg_schema.py).
_SQLITE_ONLY = {"test_the_ledger_still_refuses_every_other_change"}
_SHARED = [
    name
    for name, test in vars(test_retention).items()
    if name.startswith("test_")
    and name not in _SQLITE_ONLY
    and "bot" in inspect.signature(test).parameters
]
for _name in _SHARED:
    globals()[_name] = getattr(test_retention, _name)


@pytest.fixture
async def bot(tmp_path: Path, pg_dsn: str) -> AsyncIterator[Bot]:
    clock = FakeClock()
    async with await PgStore.open(pg_dsn, clock=clock, max_size=4) as store:
        cache = InputCache(
            tmp_path / "data" / "cache", max_bytes=10**6, max_age_seconds=7 * 24 * HOUR, clock=clock
        )
        videos = tmp_path / "data" / "videos"
        videos.mkdir(parents=True)
        retention = Retention(
            store=store,
            cache=cache,
            output_dir=videos,
            videos_max_age_seconds=24 * HOUR,
            videos_max_bytes=10**6,
            clock=clock,
        )
        yield Bot(store, cache, videos, retention, clock)


def test_every_store_test_of_the_retention_module_runs_here() -> None:
    # Eleven run on `bot`; one of them is SQLite's alone.
    assert len(_SHARED) == 10, _SHARED
