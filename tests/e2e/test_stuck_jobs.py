"""A job whose task raises something unforeseen (a full disk, a locked database, a broken input
cache) is tried again, never sent to fal twice, and after repeated failure ends refunded with a
plain message; a job that no task owns is found by the sweep and finished."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

import bot.jobs.runner
import bot.jobs.service
from bot.emulator import JobScript
from bot.store import JobState, LedgerKind
from tests.e2e.conftest import World, embed_text, job_id_of, png

# What the runner saves fal's video with; a test replaces it with one that fails like a full disk.
REAL_DOWNLOAD = bot.jobs.runner.download  # type: ignore[attr-defined]


def no_pauses(world: World) -> None:
    assert world.bot is not None
    world.bot.jobs.retry_delays = (0.0, 0.0)


def disk_full(times: int | None, real: Callable[..., Any]) -> tuple[Callable[..., Any], list[int]]:
    """A download that fails like a full disk the first `times` calls (None: always)."""
    calls: list[int] = []

    async def download(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if times is None or len(calls) <= times:
            raise OSError(errno.ENOSPC, "No space left on device")
        return int(await real(*args, **kwargs))

    return download, calls


async def test_a_full_disk_once_is_tried_again_and_the_video_delivered_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_pauses(world)
    failing, calls = disk_full(1, REAL_DOWNLOAD)
    monkeypatch.setattr(bot.jobs.runner, "download", failing)
    await world.command("pika text", {"prompt": "a full disk"})
    post = await world.wait_for(lambda: next(iter(world.posts()), None))
    assert post is not None
    job = await world.job(job_id_of(post))

    assert len(calls) == 2, "the download failed once, then worked"
    assert job.state == "delivered"
    assert len(world.posts()) == 1
    assert world.fal.counts["submit"] == 1
    assert [e.kind for e in await world.ledger()] == [LedgerKind.RESERVE, LedgerKind.SETTLE]


async def test_a_job_that_keeps_failing_ends_given_back_with_a_plain_message(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_pauses(world)
    failing, calls = disk_full(None, REAL_DOWNLOAD)
    monkeypatch.setattr(bot.jobs.runner, "download", failing)
    interaction = await world.command("pika text", {"prompt": "never fits"})
    await world.submission()
    [accepted] = await world.jobs()
    job = await world.job(accepted.id)

    assert len(calls) == 3, "the first try and two more"
    assert job.state == "failed"
    assert job.error_code == "internal_retries"
    # fal made (and billed) the video: given back to the member, still counted as spent.
    assert [e.kind for e in await world.ledger()] == [LedgerKind.RESERVE, LedgerKind.WRITE_OFF]
    assert world.fal.counts["submit"] == 1
    reply = await world.progress_says(interaction, "gave up after several tries")
    assert "not charged" in embed_text(reply)
    assert not world.posts()


async def test_a_broken_input_cache_once_is_tried_again_and_sent_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_pauses(world)
    assert world.bot is not None
    cache = world.bot.cache
    real_get = cache.get
    calls: list[str] = []

    def get(sha256: str) -> bytes | None:
        calls.append(sha256)
        if len(calls) == 1:
            raise OSError(errno.EIO, "Input/output error")
        return real_get(sha256)

    monkeypatch.setattr(cache, "get", get)
    await world.command(
        "pika animate", {"image": world.attach(png(), "cat.png"), "prompt": "it blinks"}
    )
    post = await world.wait_for(lambda: next(iter(world.posts()), None))
    assert post is not None
    job = await world.job(job_id_of(post))

    assert len(calls) == 2
    assert job.state == "delivered"
    assert world.fal.counts["submit"] == 1
    assert [e.kind for e in await world.ledger()] == [LedgerKind.RESERVE, LedgerKind.SETTLE]


async def test_a_job_that_keeps_failing_before_fal_ends_refunded_and_never_sent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_pauses(world)
    assert world.bot is not None
    calls: list[str] = []

    def get(sha256: str) -> bytes | None:
        calls.append(sha256)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(world.bot.cache, "get", get)
    interaction = await world.command(
        "pika animate", {"image": world.attach(png(), "cat.png"), "prompt": "it blinks"}
    )
    reply = await world.progress_says(interaction, "gave up after several tries")
    [accepted] = await world.jobs()
    job = await world.job(accepted.id)

    assert len(calls) == 3
    assert job.state == "failed"
    assert world.fal.counts["submit"] == 0
    assert [e.kind for e in await world.ledger()] == [LedgerKind.RESERVE, LedgerKind.REFUND]
    assert "not charged" in embed_text(reply)


async def test_a_locked_database_after_fal_accepted_is_never_sent_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_pauses(world)
    assert world.store is not None
    store = world.store
    real_transition = store.jobs.transition

    async def transition(job_id: str, to: JobState, **kwargs: Any) -> bool:
        if to is JobState.SUBMITTED:
            raise sqlite3.OperationalError("database is locked")
        return await real_transition(job_id, to, **kwargs)

    monkeypatch.setattr(store.jobs, "transition", transition)
    await world.command("pika text", {"prompt": "sent but not written down"})
    await world.submission()
    [accepted] = await world.jobs()
    job = await world.job(accepted.id)

    # fal has it, the bot could not record it: never sent again, and flagged as unknown.
    assert world.fal.counts["submit"] == 1
    assert job.state == "unknown"
    reserve, ending = await world.ledger()
    assert reserve.kind is LedgerKind.RESERVE
    assert ending.kind is not LedgerKind.SETTLE, "the member is not charged"


async def test_a_job_without_a_task_is_found_by_the_sweep_and_delivered(world: World) -> None:
    assert world.bot is not None
    jobs = world.bot.jobs
    world.fal.script_next(JobScript(hold_in_queue=True))
    await world.command("pika text", {"prompt": "orphan"})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, "IN_QUEUE")
    [job] = await world.jobs()
    # Its task dies without a trace (as a task killed by a bug in the bot would).
    task = jobs._tasks[job.id]
    task.cancel()
    await world.wait_for(task.done)
    assert job.id not in jobs._tasks
    # A send in flight outlives its task (it is shielded) and records fal's answer; the sweep
    # leaves a job alone until then, so wait for it.
    while jobs._runner.sending:
        await asyncio.wait(set(jobs._runner.sending))

    await jobs.sweep()
    assert job.id in jobs._tasks, "the sweep took the job up again"
    await world.fal.advance(submission.request_id)
    await world.fal.advance(submission.request_id)
    ended = await world.job(job.id)
    assert ended.state == "delivered"
    assert len(world.posts()) == 1
    assert world.fal.counts["submit"] == 1
    assert [e.kind for e in await world.ledger()] == [LedgerKind.RESERVE, LedgerKind.SETTLE]


async def test_a_scheduling_round_that_fails_is_tried_again_and_the_job_delivered(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert world.bot is not None
    assert world.store is not None
    monkeypatch.setattr(bot.jobs.service, "SCHEDULER_RETRY_S", 0.0)
    jobs = world.bot.jobs
    real_get = world.store.jobs.get
    refused: list[str] = []

    async def get(job_id: str) -> Any:
        # The scheduler's look at the job it picked hits a locked database, once.
        task = asyncio.current_task()
        if not refused and task is not None and task.get_name() == "pika-scheduler":
            refused.append(job_id)
            raise sqlite3.OperationalError("database is locked")
        return await real_get(job_id)

    monkeypatch.setattr(world.store.jobs, "get", get)
    await world.command("pika text", {"prompt": "scheduled after a locked database"})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    job = await world.job(job_id_of(post))
    assert refused == [job.id]
    assert job.state is JobState.DELIVERED
    assert world.fal.counts["submit"] == 1
    assert jobs.alive
