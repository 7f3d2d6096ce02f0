"""A bot restarted while fal holds its jobs picks them up and delivers each exactly once."""

from __future__ import annotations

import pytest

from bot.emulator import JobScript
from bot.store import LedgerKind
from tests.e2e.conftest import World, job_id_of


@pytest.mark.parametrize("stage", ["IN_QUEUE", "IN_PROGRESS"])
async def test_a_job_waiting_at_fal_across_a_restart_is_delivered_once(
    world: World, stage: str
) -> None:
    hold_in_progress = stage == "IN_PROGRESS"
    world.fal.script_next(
        JobScript(
            queue_position=2, hold_in_queue=not hold_in_progress, hold_in_progress=hold_in_progress
        )
    )
    interaction = await world.command("pika text", {"prompt": "a lighthouse", "seed": 12})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, stage)  # type: ignore[arg-type]
    await world.progress_says(interaction, "Generating" if hold_in_progress else "fal's queue")
    [job] = await world.jobs()
    assert job.fal_request_id == submission.request_id

    await world.stop()
    await world.start()
    await world.fal.advance(submission.request_id)
    if stage == "IN_QUEUE":
        await world.fal.advance(submission.request_id)
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    finished = await world.job(job_id_of(post))

    assert finished.id == job.id
    assert finished.state == "delivered"
    assert len(world.posts()) == 1
    assert world.fal.counts["submit"] == 1
    assert [e.kind for e in await world.ledger()] == [LedgerKind.RESERVE, LedgerKind.SETTLE]
    assert f"<@{world.fake.member.id}>" in post.content
    # The original interaction's reply is the one that says where the video went.
    assert interaction.original is not None
    assert not interaction.original.deleted


async def test_a_job_delivered_just_before_a_restart_is_not_posted_again(world: World) -> None:
    await world.command("pika text", {"prompt": "a kite", "seed": 3})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    job = await world.job(job_id_of(post))
    assert job.state == "delivered"

    await world.stop()
    await world.start()
    assert await world.job(job.id) == job
    assert len(world.posts()) == 1
    assert [e.kind for e in await world.ledger()] == [LedgerKind.RESERVE, LedgerKind.SETTLE]
