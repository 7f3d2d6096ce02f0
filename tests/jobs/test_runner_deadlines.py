"""The runner's two deadlines: a submit in flight is waited for, a job is never sent with only
moments left, a failed cancel keeps the job watched, and the hard deadline ends what fal never
finalises (issue 11 items 1, 2 and 13)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.emulator import Fault, JobScript
from bot.media import InputCache
from bot.pika import AnimateRequest, InputRef
from bot.store import JobState, LedgerKind
from tests.e2e.conftest import png
from tests.jobs.conftest import Rig

PERIOD = "2026-11-21"


async def test_a_deadline_during_the_submit_waits_for_fals_answer_and_cancels_by_its_id(
    rig: Rig,
) -> None:
    rig.fal.script_next(JobScript(hold_in_queue=True))
    # fal accepts the job, then answers after the deadline has passed.
    rig.fal.inject(Fault(kind="submit", delay=3.0, after_accept=True))
    job = await rig.new_job("slow to accept")
    ended = await rig.run(rig.runner(deadline_seconds=2, hard_deadline_seconds=30), job)
    (submission,) = rig.fal.submissions
    assert ended.fal_request_id == submission.request_id
    assert rig.fal.counts["cancel"] == 1
    # fal stopped it in its queue: it never ran, so the refund is a plain one.
    assert (ended.state, ended.error_code) == (JobState.FAILED, "deadline")
    assert await rig.kinds(job) == [LedgerKind.RESERVE, LedgerKind.REFUND]


async def test_a_job_with_only_moments_left_before_its_deadline_is_not_sent(rig: Rig) -> None:
    job = await rig.new_job("too late to send")
    rig.clock.now += 1.8  # 0.2 s left of 2: less than the margin (a quarter of the deadline)
    ended = await rig.run(rig.runner(deadline_seconds=2), job)
    assert rig.fal.counts["submit"] == 0
    assert (ended.state, ended.error_code) == (JobState.FAILED, "deadline")
    assert await rig.kinds(job) == [LedgerKind.RESERVE, LedgerKind.REFUND]


async def test_a_failed_deadline_cancel_keeps_the_job_watched_and_delivers_what_fal_finishes(
    rig: Rig,
) -> None:
    rig.fal.script_next(JobScript(hold_in_progress=True))
    rig.fal.inject(Fault(kind="cancel", status=500, times=2))
    job = await rig.new_job("cancel fails")
    run = asyncio.create_task(
        rig.run(rig.runner(deadline_seconds=1, hard_deadline_seconds=60), job)
    )
    await rig.fal.wait_for_requests("submit", 1)
    (submission,) = rig.fal.submissions
    # Both tries of the deadline's cancel fail (the client tries twice).
    await rig.fal.wait_for_requests("cancel", 2)
    await rig.fal.advance(submission.request_id)
    ended = await run
    assert ended.state is JobState.DELIVERED
    assert await rig.kinds(job) == [LedgerKind.RESERVE, LedgerKind.SETTLE]


async def test_a_job_fal_never_finalises_after_the_deadline_cancel_ends_at_the_hard_deadline(
    rig: Rig,
) -> None:
    # fal accepts the cancel of a running job but never stops or finishes it.
    rig.fal.script_next(JobScript(hold_in_progress=True))
    job = await rig.new_job("never ends")
    ended = await rig.run(rig.runner(deadline_seconds=1, hard_deadline_seconds=2), job)
    assert (ended.state, ended.error_code) == (JobState.FAILED, "fal_no_answer")
    assert rig.fal.counts["cancel"] == 2  # at the deadline, and once more at the hard one
    assert job.id in rig.left_fal
    # The member gets everything back; the run stays in the server's and the day's spend.
    assert await rig.kinds(job) == [LedgerKind.RESERVE, LedgerKind.WRITE_OFF]
    balance = await rig.store.ledger.balance(1, 100, period=PERIOD, allowance=1000)
    assert (balance.used, balance.reserved) == (0, 0)
    assert await rig.store.ledger.guild_spend(1, PERIOD) == 20
    assert await rig.store.ledger.global_spend(PERIOD) == 20
    assert [words for job_id, words in rig.messenger.told if job_id == job.id]


async def test_a_job_whose_uploads_use_up_its_deadline_is_not_sent(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = InputCache(
        rig.config.output_dir.parent / "cache", max_bytes=10**8, max_age_seconds=3600
    )
    request = AnimateRequest(
        image=InputRef(sha256=cache.put(png()), content_type="image/png"), prompt="late", seed=7
    )
    job = await rig.new_job("late", request=request)
    real_file_input = rig.client.file_input

    async def slow_upload(*args: Any, **kwargs: Any) -> str:
        rig.clock.now += 1.8  # the upload takes what the job had left of its 2 s
        return await real_file_input(*args, **kwargs)

    monkeypatch.setattr(rig.client, "file_input", slow_upload)
    ended = await rig.run(rig.runner(deadline_seconds=2), job)
    assert rig.fal.counts["submit"] == 0
    assert (ended.state, ended.error_code) == (JobState.FAILED, "deadline")
    assert await rig.kinds(job) == [LedgerKind.RESERVE, LedgerKind.REFUND]
