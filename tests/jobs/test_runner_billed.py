"""Jobs fal may still run, or has billed, are not abandoned: odd status answers are waited out,
and a run that ends without a video after fal may have billed it is written off, never plainly
refunded (issue 11 item 2); a job resumed in "completed" uses what it had (item 15)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import bot.jobs.sending
from bot.emulator import Fault, JobScript
from bot.retry import RetryPolicy
from bot.store import Job, JobState, LedgerKind
from tests.jobs.conftest import Rig

PERIOD = "2026-11-21"
FAST_DOWNLOADS = RetryPolicy(max_attempts=4, base_delay=0.01, jitter=False)


@pytest.mark.parametrize(
    "faults",
    [
        [Fault(kind="stream", status=401)],
        [Fault(kind="stream", status=403)],
        [Fault(kind="stream", status=404), Fault(kind="status", status=400)],
        [Fault(kind="stream", status=404), Fault(kind="status", status=200, body="not json")],
    ],
    ids=["stream-401", "stream-403", "status-400-untyped", "status-200-not-json"],
)
async def test_one_odd_status_answer_is_waited_out_and_the_video_delivered(
    rig: Rig, faults: list[Fault]
) -> None:
    rig.fal.inject(*faults)
    job = await rig.new_job("odd answer")
    ended = await rig.run(rig.runner(), job)
    assert sum(rig.fal.faulted.values()) == len(faults)
    assert ended.state is JobState.DELIVERED, ended.error
    assert await rig.kinds(job) == [LedgerKind.RESERVE, LedgerKind.SETTLE]
    assert rig.fal.counts["submit"] == 1


async def written_off(rig: Rig, job: Job) -> None:
    """Refunded to the member in full, but still counted against the server and the day."""
    assert await rig.kinds(job) == [LedgerKind.RESERVE, LedgerKind.WRITE_OFF]
    balance = await rig.store.ledger.balance(1, 100, period=PERIOD, allowance=1000)
    assert (balance.used, balance.reserved, balance.left) == (0, 0, 1000)
    assert await rig.store.ledger.guild_spend(1, PERIOD) == job.cost
    assert await rig.store.ledger.global_spend(PERIOD) == job.cost
    assert [words for job_id, words in rig.messenger.told if job_id == job.id]


async def test_a_submit_whose_answer_was_lost_is_written_off(rig: Rig) -> None:
    rig.fal.inject(Fault(kind="submit", reset=True, after_accept=True))
    job = await rig.new_job("lost answer")
    ended = await rig.run(rig.runner(), job)
    assert ended.state is JobState.UNKNOWN
    await written_off(rig, job)


async def test_a_job_found_mid_send_after_a_restart_is_written_off(rig: Rig) -> None:
    job = await rig.new_job("stopped while sending")
    assert await rig.store.jobs.transition(job.id, JobState.SUBMITTING, expected={JobState.QUEUED})
    ended = await rig.run(rig.runner(), job, resumed=True)
    assert ended.state is JobState.UNKNOWN
    await written_off(rig, job)


async def test_a_finished_video_whose_result_expired_is_written_off(rig: Rig) -> None:
    rig.fal.script_next(JobScript(hold_in_progress=True))
    job = await rig.new_job("result expired")
    run = asyncio.create_task(rig.run(rig.runner(), job))
    await rig.fal.wait_for_requests("submit", 1)
    (submission,) = rig.fal.submissions
    await rig.fal.wait_for_status(submission.request_id, "IN_PROGRESS")
    rig.fal.expire(submission.request_id)
    await rig.fal.advance(submission.request_id)
    ended = await run
    assert (ended.state, ended.error_code) == (JobState.FAILED, "fal_not_found")
    await written_off(rig, job)


async def test_a_finished_video_that_cannot_be_downloaded_is_written_off(rig: Rig) -> None:
    rig.fal.inject(Fault(kind="file", status=500, times=4))
    job = await rig.new_job("download fails")
    ended = await rig.run(rig.runner(download_retry=FAST_DOWNLOADS), job)
    assert (ended.state, ended.error_code) == (JobState.FAILED, "download_failed")
    await written_off(rig, job)


async def test_a_downloaded_video_lost_from_disk_is_written_off(rig: Rig, tmp_path: Path) -> None:
    job = await rig.new_job("lost from disk")
    for to, before in (
        (JobState.SUBMITTING, JobState.QUEUED),
        (JobState.SUBMITTED, JobState.SUBMITTING),
        (JobState.COMPLETED, JobState.SUBMITTED),
    ):
        assert await rig.store.jobs.transition(job.id, to, expected={before}, fal_request_id="r-1")
    assert await rig.store.jobs.transition(
        job.id,
        JobState.DOWNLOADED,
        expected={JobState.COMPLETED},
        output_path=str(tmp_path / "gone.mp4"),
    )
    ended = await rig.run(rig.runner(), job, resumed=True)
    assert (ended.state, ended.error_code) == (JobState.FAILED, "video_lost")
    await written_off(rig, job)


# -- resumed in "completed" (item 15) ---------------------------------------------------------


async def finished_elsewhere(rig: Rig) -> Job:
    """A job run to its end, whose fal request and video the tests below reuse."""
    first = await rig.run(rig.runner(), await rig.new_job("the first one"))
    assert first.state is JobState.DELIVERED
    return first


async def completed_job(rig: Rig, first: Job, **changes: object) -> Job:
    """A job a stop left in "completed", at the same fal request as `first`."""
    job = await rig.new_job("resumed in completed")
    assert await rig.store.jobs.transition(job.id, JobState.SUBMITTING, expected={JobState.QUEUED})
    assert await rig.store.jobs.transition(
        job.id,
        JobState.SUBMITTED,
        expected={JobState.SUBMITTING},
        fal_request_id=first.fal_request_id,
    )
    assert await rig.store.jobs.transition(
        job.id,
        JobState.COMPLETED,
        expected={JobState.SUBMITTED},
        **changes,  # type: ignore[arg-type]
    )
    found = await rig.store.jobs.get(job.id)
    assert found is not None
    return found


async def test_a_job_resumed_in_completed_downloads_its_stored_video_url(rig: Rig) -> None:
    first = await finished_elsewhere(rig)
    job = await completed_job(rig, first, video_url=first.video_url)
    results, files = rig.fal.counts["result"], rig.fal.counts["file"]
    ended = await rig.run(rig.runner(), job, resumed=True)
    assert ended.state is JobState.DELIVERED
    assert rig.fal.counts["result"] == results  # fal's result was not asked again
    assert rig.fal.counts["file"] == files + 1
    assert await rig.kinds(job) == [LedgerKind.RESERVE, LedgerKind.SETTLE]


async def test_a_job_resumed_in_completed_uses_the_video_already_on_disk(rig: Rig) -> None:
    first = await finished_elsewhere(rig)
    job = await completed_job(rig, first, video_url=first.video_url)
    assert first.output_path is not None
    on_disk = rig.config.output_dir / f"{job.id}.mp4"
    shutil.copyfile(first.output_path, on_disk)
    results, files = rig.fal.counts["result"], rig.fal.counts["file"]
    ended = await rig.run(rig.runner(), job, resumed=True)
    assert ended.state is JobState.DELIVERED
    assert (rig.fal.counts["result"], rig.fal.counts["file"]) == (results, files)
    assert ended.output_path == str(on_disk)
    assert ended.output_size == on_disk.stat().st_size


async def test_a_submit_answered_500_with_a_request_id_is_watched_by_that_id(rig: Rig) -> None:
    # fal took the request (it has an id) but failed its answer: the run exists and may bill.
    rig.fal.inject(Fault(kind="submit", status=500, after_accept=True, request_id_header=True))
    job = await rig.new_job("taken, then a 500")
    ended = await rig.run(rig.runner(), job)
    assert rig.fal.faulted["submit"] == 1
    assert ended.state is JobState.DELIVERED, ended.error
    assert ended.fal_request_id is not None
    assert rig.fal.counts["submit"] == 1
    assert await rig.kinds(job) == [LedgerKind.RESERVE, LedgerKind.SETTLE]


async def test_a_submit_answered_500_without_a_request_id_is_written_off(rig: Rig) -> None:
    rig.fal.inject(Fault(kind="submit", status=500, after_accept=True))
    job = await rig.new_job("a 500 after reading it")
    ended = await rig.run(rig.runner(), job)
    assert ended.state is JobState.UNKNOWN
    assert rig.fal.counts["submit"] == 1
    await written_off(rig, job)


async def test_a_request_id_that_cannot_be_written_is_tried_again_then_cancelled_at_fal(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.jobs.sending, "RECORD_RETRY_S", 0.0)
    real = rig.store.jobs.transition
    refusals: list[str] = []

    async def transition(job_id: str, to: JobState, **changes: Any) -> bool:
        if to is JobState.SUBMITTED and len(refusals) < failures:
            refusals.append(job_id)
            raise sqlite3.OperationalError("database is locked")
        return await real(job_id, to, **changes)

    monkeypatch.setattr(rig.store.jobs, "transition", transition)
    # Refused once: the second try records it, and the video is delivered.
    failures = 1
    job = await rig.new_job("recorded on the second try")
    ended = await rig.run(rig.runner(), job)
    assert ended.state is JobState.DELIVERED
    assert rig.fal.counts["cancel"] == 0
    # Refused every time: fal is asked to cancel the run it holds, and the job is not judged
    # here (its task fails; Jobs ends it as a send whose outcome is unknown).
    failures = 1 + bot.jobs.sending.RECORD_ATTEMPTS
    job = await rig.new_job("never recorded")
    with pytest.raises(sqlite3.OperationalError):
        await rig.run(rig.runner(), job)
    assert rig.fal.counts["cancel"] == 1
    assert rig.fal.counts["submit"] == 2
