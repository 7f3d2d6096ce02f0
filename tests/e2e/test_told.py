"""A member whose job ended without a video is told why, even across a restart."""

from __future__ import annotations

from pathlib import Path

from bot.emulator import JobScript
from tests.e2e.conftest import World


def notes(world: World) -> list[str]:
    """Every followup the bot sent telling a member a job ended without a video."""
    return [
        r.json.get("content", "")
        for r in world.fake.requests
        if r.method == "POST"
        and r.path.startswith("/webhooks/")
        and isinstance(r.json, dict)
        and "ended without a video" in (r.json.get("content") or "")
        and r.status < 300
    ]


async def test_a_failure_the_member_could_not_be_told_about_is_told_after_a_restart(
    world: World,
) -> None:
    world.fal.default_script = JobScript(outcome="model_error", error_message="nsfw content")
    # The note to the member cannot go out: not as a followup, in the channel, nor by DM.
    world.fake.fail_next("POST", "/webhooks/*", 403, code=50013)
    world.fake.fail_next("POST", "/channels/*/messages", 403, code=50013, times=2)
    await world.command("pika text", {"prompt": "a forbidden thing"})
    await world.wait_for(lambda: world.fal.submissions or None)
    job_id = (await world.jobs())[0].id
    job = await world.job(job_id)
    assert job.state == "failed"
    assert job.told_at is None
    assert not notes(world)
    assert world.store is not None
    assert [e.kind for e in await world.store.ledger.for_job(job_id)] == ["reserve", "refund"]

    await world.stop()
    await world.start()
    await world.wait_for(lambda: notes(world) or None)
    told = await world.job(job_id)
    assert told.told_at is not None
    assert len(notes(world)) == 1
    assert "nsfw content" in notes(world)[0]


async def test_a_told_failure_is_not_told_again_after_a_restart(world: World) -> None:
    world.fal.default_script = JobScript(outcome="model_error", error_message="nsfw content")
    await world.command("pika text", {"prompt": "a forbidden thing"})
    await world.wait_for(lambda: world.fal.submissions or None)
    job = await world.job((await world.jobs())[0].id)
    assert job.told_at is not None
    assert len(notes(world)) == 1
    await world.stop()
    await world.start()
    await world.command("pika text", {"prompt": "a second forbidden thing"})
    await world.wait_for(lambda: len(world.fal.submissions) == 2 or None)
    await world.job((await world.jobs())[0].id)
    assert len(notes(world)) == 2


async def test_a_video_lost_from_disk_before_posting_is_refunded_and_explained(
    world: World,
) -> None:
    # The post of the finished video is held; the bot stops with the job downloaded.
    hold = world.fake.hold_next("POST", "/channels/*/messages", before=True)
    await world.command("pika text", {"prompt": "a fragile video"})
    await hold.wait()
    job_id = (await world.jobs())[0].id
    assert world.store is not None
    downloaded = await world.store.jobs.get(job_id)
    assert downloaded is not None
    assert downloaded.state == "downloaded"
    assert downloaded.output_path is not None
    await world.stop()
    hold.drop()
    Path(downloaded.output_path).unlink()  # noqa: ASYNC240 - a test stands in for a lost disk
    await world.start()
    job = await world.job(job_id)
    assert job.state == "failed"
    assert job.error_code == "video_lost"
    assert world.store is not None
    # fal billed the run: the member gets it back, the budgets keep counting it.
    assert [e.kind for e in await world.store.ledger.for_job(job_id)] == ["reserve", "write_off"]
    assert not world.posts()
