"""Retention and privacy: the data folder stays bounded, and a member's data can be forgotten."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.config import ConfigError, load_settings
from bot.jobs.retention import Retention, prune_videos
from bot.media import InputCache
from bot.store import Job, JobState, LedgerKind, Store
from tests.store.factories import PERIOD, T0, FakeClock, limits, new_job

GUILD, OTHER_GUILD = 1, 2
MEMBER, NEIGHBOUR, ADMIN = 100, 200, 300
HOUR = 3600


def write(path: Path, size: int, *, age_s: float, now: float = T0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"v" * size)
    os.utime(path, (now - age_s, now - age_s))
    return path


def exists(path: str, suffix: str = "") -> bool:
    """Whether the file (or its sibling with this suffix, e.g. the re-encoded copy) exists."""
    target = Path(path)
    return (target.with_suffix(suffix) if suffix else target).exists()


# -- pruning videos ------------------------------------------------------------------------


def test_videos_older_than_the_bound_are_pruned(tmp_path: Path) -> None:
    old = write(tmp_path / "old.mp4", 10, age_s=8 * 24 * HOUR)
    new = write(tmp_path / "new.mp4", 10, age_s=HOUR)
    removed = prune_videos(tmp_path, max_age_seconds=7 * 24 * HOUR, max_bytes=10**6, now=T0)
    assert removed == 1
    assert not old.exists()
    assert new.exists()


def test_the_oldest_videos_go_first_when_the_folder_is_too_big(tmp_path: Path) -> None:
    a = write(tmp_path / "a.mp4", 400, age_s=3 * HOUR)
    b = write(tmp_path / "b.mp4", 400, age_s=2 * HOUR)
    c = write(tmp_path / "c.mp4", 400, age_s=1 * HOUR)
    removed = prune_videos(tmp_path, max_age_seconds=24 * HOUR, max_bytes=800, now=T0)
    assert removed == 1
    assert [p.exists() for p in (a, b, c)] == [False, True, True]


def test_videos_of_unfinished_jobs_are_never_pruned(tmp_path: Path) -> None:
    kept = write(tmp_path / "kept.mp4", 1000, age_s=30 * 24 * HOUR)
    other = write(tmp_path / "other.mp4", 1000, age_s=HOUR)
    removed = prune_videos(tmp_path, max_age_seconds=HOUR * 2, max_bytes=500, now=T0, keep=[kept])
    assert removed == 1
    assert kept.exists()
    assert not other.exists()


def test_a_download_in_progress_is_left_alone(tmp_path: Path) -> None:
    partial = write(tmp_path / ".job.mp4.abc.part", 1000, age_s=60)
    assert prune_videos(tmp_path, max_age_seconds=30, max_bytes=10, now=T0) == 0
    assert partial.exists()


def test_a_missing_folder_prunes_nothing(tmp_path: Path) -> None:
    assert prune_videos(tmp_path / "nope", max_age_seconds=1, max_bytes=1, now=T0) == 0


# -- the store, the cache and the videos of one bot ------------------------------------------


@dataclass
class Bot:
    store: Store
    cache: InputCache
    videos: Path
    retention: Retention
    clock: FakeClock

    async def job(
        self,
        user_id: int,
        *,
        guild_id: int = GUILD,
        inputs: tuple[str, ...] = (),
        end: JobState | None = JobState.DELIVERED,
        video: bool = False,
    ) -> Job:
        job = await self.store.jobs.create(
            new_job(user_id=user_id, guild_id=guild_id, input_hashes=inputs),
            cost=20,
            actor_id=user_id,
            **limits(),
        )
        output = None
        if video:
            output = write(self.videos / f"{job.id}.mp4", 100, age_s=60)
            write(self.videos / f"{job.id}.fit.mp4", 50, age_s=60)
        if end is JobState.DOWNLOADED:
            await self.store.jobs.transition(
                job.id, end, expected={JobState.QUEUED}, output_path=str(output)
            )
        elif end is not None:
            outcome = LedgerKind.SETTLE if end is JobState.DELIVERED else LedgerKind.REFUND
            await self.store.jobs.finish(
                job.id,
                end,
                expected={JobState.QUEUED},
                outcome=outcome,
                output_path=str(output) if output else None,
            )
        fresh = await self.store.jobs.get(job.id)
        assert fresh is not None
        return fresh


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    clock = FakeClock()
    async with await Store.open(tmp_path / "db.sqlite3", clock=clock) as store:
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


async def test_pruning_keeps_the_video_of_a_job_not_yet_delivered(bot: Bot) -> None:
    waiting = await bot.job(MEMBER, end=JobState.DOWNLOADED, video=True)
    done = await bot.job(NEIGHBOUR, video=True)
    assert waiting.output_path is not None
    assert done.output_path is not None
    bot.clock.now = T0 + 2 * 24 * HOUR
    report = await bot.retention.prune()
    assert report.videos == 2  # the delivered job's video and its re-encoded copy
    assert exists(waiting.output_path)
    assert exists(waiting.output_path, ".fit.mp4")
    assert not exists(done.output_path)


async def test_pruning_bounds_the_input_cache_too(bot: Bot) -> None:
    sha = bot.cache.put(b"an old image")
    bot.clock.now = T0 + 8 * 24 * HOUR
    report = await bot.retention.prune()
    assert report.inputs == 1
    assert sha not in bot.cache


# -- the retention bound on jobs -----------------------------------------------------------

DAY = 24 * HOUR


def with_job_bound(bot: Bot, days: float, cache: InputCache | None = None) -> Retention:
    return Retention(
        store=bot.store,
        cache=cache or bot.cache,
        output_dir=bot.videos,
        videos_max_age_seconds=365 * DAY,
        videos_max_bytes=10**9,
        jobs_max_age_seconds=days * DAY,
        clock=bot.clock,
    )


async def test_a_job_finished_past_the_bound_loses_its_prompt_and_personal_data(bot: Bot) -> None:
    own = bot.cache.put(b"member's own image")
    old = await bot.job(MEMBER, inputs=(own,), video=True)
    assert old.request
    assert old.interaction_token
    assert old.output_path
    ledger = await bot.store.ledger.for_job(old.id)
    bot.clock.now = T0 + 29 * DAY
    recent = await bot.job(NEIGHBOUR, video=True)
    bot.clock.now = T0 + 31 * DAY

    report = await with_job_bound(bot, 30).prune()

    assert report.jobs == 1
    job = await bot.store.jobs.get(old.id)
    assert job is not None
    assert job.request == {}
    assert job.input_hashes == ()
    assert job.interaction_token is None
    assert job.interaction_id is None
    assert job.video_url is None
    assert job.output_path is None
    assert job.seed is None
    # The row stays for the ledger and the member's history; no amount moved.
    assert (job.user_id, job.guild_id, job.state, job.cost) == (
        MEMBER,
        GUILD,
        JobState.DELIVERED,
        old.cost,
    )
    assert await bot.store.ledger.for_job(old.id) == ledger
    assert not exists(old.output_path)
    assert not exists(old.output_path, ".fit.mp4")
    assert own not in bot.cache
    assert await bot.store.jobs.get(recent.id) == recent
    assert recent.output_path is not None
    assert exists(recent.output_path)


async def test_unfinished_jobs_keep_everything_however_old(bot: Bot) -> None:
    running = await bot.job(MEMBER, end=None)
    waiting = await bot.job(NEIGHBOUR, end=JobState.DOWNLOADED, video=True)
    bot.clock.now = T0 + 400 * DAY
    report = await with_job_bound(bot, 30).prune()
    assert report.jobs == 0
    assert await bot.store.jobs.get(running.id) == running
    assert await bot.store.jobs.get(waiting.id) == waiting


async def test_inputs_a_younger_job_still_uses_are_kept(bot: Bot, tmp_path: Path) -> None:
    # The cache's own age bound is a year here: only the job bound could remove the input.
    cache = InputCache(
        tmp_path / "year", max_bytes=10**6, max_age_seconds=365 * DAY, clock=bot.clock
    )
    shared = cache.put(b"an image used twice")
    lone = cache.put(b"an image used once")
    await bot.job(MEMBER, inputs=(shared, lone))
    bot.clock.now = T0 + 20 * DAY
    await bot.job(MEMBER, inputs=(shared,))
    bot.clock.now = T0 + 31 * DAY
    assert (await with_job_bound(bot, 30, cache).prune()).jobs == 1
    assert shared in cache
    assert lone not in cache


def test_the_job_retention_bound_is_a_setting_of_30_days_by_default() -> None:
    assert load_settings().job_retention_days == 30
    assert load_settings(job_retention_days=7).job_retention_days == 7
    with pytest.raises(ConfigError, match="PIKABOT_JOB_RETENTION_DAYS"):
        load_settings(job_retention_days=0)


# -- forgetting a member -----------------------------------------------------------------


async def test_forgetting_scrubs_the_members_finished_jobs(bot: Bot) -> None:
    own = bot.cache.put(b"member's own image")
    delivered = await bot.job(MEMBER, inputs=(own,), video=True)
    failed = await bot.job(MEMBER, end=JobState.FAILED)
    report = await bot.retention.forget(GUILD, MEMBER)
    assert set(report.forgotten.job_ids) == {delivered.id, failed.id}
    for job_id in (delivered.id, failed.id):
        job = await bot.store.jobs.get(job_id)
        assert job is not None
        assert job.user_id == 0
        assert job.request == {}
        assert job.input_hashes == ()
        assert job.interaction_token is None
        assert job.output_path is None
        assert job.video_url is None
    assert await bot.store.jobs.recent(MEMBER) == []
    assert delivered.output_path is not None
    assert not exists(delivered.output_path)
    assert not exists(delivered.output_path, ".fit.mp4")
    assert own not in bot.cache
    assert report.videos_deleted == 1
    assert report.inputs_deleted == 1


async def test_inputs_other_jobs_still_use_are_kept(bot: Bot) -> None:
    shared = bot.cache.put(b"an image two members used")
    await bot.job(MEMBER, inputs=(shared,))
    await bot.job(NEIGHBOUR, inputs=(shared,))
    report = await bot.retention.forget(GUILD, MEMBER)
    assert report.forgotten.orphaned_inputs == ()
    assert shared in bot.cache


async def test_unfinished_jobs_and_other_servers_are_left_alone(bot: Bot) -> None:
    running_input = bot.cache.put(b"input of a running job")
    running = await bot.job(MEMBER, inputs=(running_input,), end=None)
    elsewhere = await bot.job(MEMBER, guild_id=OTHER_GUILD)
    report = await bot.retention.forget(GUILD, MEMBER)
    assert report.forgotten.unfinished == 1
    assert "1 unfinished jobs were left alone" in report.summary()
    assert await bot.store.jobs.get(running.id) == running
    assert await bot.store.jobs.get(elsewhere.id) == elsewhere
    assert running_input in bot.cache
    # The running job can still end normally: its refund matches its untouched reservation.
    assert await bot.store.jobs.finish(
        running.id, JobState.FAILED, expected={JobState.QUEUED}, outcome=LedgerKind.REFUND
    )


async def test_ledger_rows_are_anonymised_and_every_sum_still_holds(bot: Bot) -> None:
    await bot.job(MEMBER)
    await bot.job(MEMBER, end=JobState.FAILED)
    await bot.job(NEIGHBOUR)
    await bot.store.ledger.grant(
        GUILD, MEMBER, 30, period=PERIOD, actor_id=ADMIN, note="for a contest"
    )
    guild_before = await bot.store.ledger.guild_spend(GUILD, PERIOD)
    global_before = await bot.store.ledger.global_spend(PERIOD)
    rows_before = len(await bot.store.ledger.for_member(GUILD, MEMBER))

    report = await bot.retention.forget(GUILD, MEMBER)

    assert report.forgotten.ledger_rows == rows_before == 5
    assert await bot.store.ledger.for_member(GUILD, MEMBER) == []
    anonymous = await bot.store.ledger.for_member(GUILD, 0)
    assert len(anonymous) == rows_before
    assert {row.actor_id for row in anonymous} == {0, ADMIN}
    grant = next(row for row in anonymous if row.kind is LedgerKind.GRANT)
    assert grant.note == ""
    assert await bot.store.ledger.guild_spend(GUILD, PERIOD) == guild_before
    assert await bot.store.ledger.global_spend(PERIOD) == global_before
    assert len(await bot.store.ledger.for_member(GUILD, NEIGHBOUR)) == 2
    audit = await bot.store.audit.log(GUILD)
    assert all('"user_id": 100' not in entry.details_json for entry in audit)


async def test_the_ledger_still_refuses_every_other_change(bot: Bot, tmp_path: Path) -> None:
    await bot.job(MEMBER)
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        for sql in (
            "UPDATE ledger SET amount = 0",
            "UPDATE ledger SET user_id = 999",
            "UPDATE ledger SET user_id = 0, period = '2000-01-01'",
            "DELETE FROM ledger",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(sql)


async def test_the_anonymous_member_cannot_be_forgotten(bot: Bot) -> None:
    with pytest.raises(ValueError, match="anonymous"):
        await bot.retention.forget(GUILD, 0)


@pytest.fixture
def root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logger")
async def test_the_cli_forgets_a_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "cli" / "db.sqlite3"
    async with await Store.open(database) as store:
        job = await store.jobs.create(
            new_job(user_id=MEMBER, guild_id=GUILD), cost=20, actor_id=MEMBER, **limits()
        )
        await store.jobs.finish(
            job.id, JobState.FAILED, expected={JobState.QUEUED}, outcome=LedgerKind.REFUND
        )
    monkeypatch.setenv("PIKABOT_DATABASE", str(database))
    monkeypatch.setenv("PIKABOT_DATA_DIR", str(tmp_path / "cli"))
    # The CLI runs its own event loop: give it a thread of its own.
    code = await asyncio.to_thread(main, ["forget", "--guild", str(GUILD), "--user", str(MEMBER)])
    assert code == 0
    assert f"member {MEMBER} in server {GUILD}: 1 finished jobs scrubbed" in capsys.readouterr().out
    async with await Store.open(database) as store:
        assert await store.jobs.recent(MEMBER) == []
