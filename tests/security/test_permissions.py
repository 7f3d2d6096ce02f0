"""Who may act on a job is checked by the bot itself, whatever Discord shows: another member can
neither cancel nor look up a job by its id nor press its Cancel button."""

from __future__ import annotations

from bot.emulator import JobScript
from bot.store import JobState
from tests.e2e.conftest import World, job_id_of


async def test_a_stranger_can_neither_cancel_nor_look_up_a_job_nor_press_its_cancel_button(
    world: World,
) -> None:
    world.fal.default_script = JobScript(hold_in_queue=True)
    interaction = await world.command("pika text", {"prompt": "mine, not yours"})
    reply = await world.progress_says(interaction, "fal")
    job_id = job_id_of(reply)
    await world.submission()
    stranger = await world.fake.add_member("mallory")

    for name in ("pika cancel", "pika job"):
        refused = await world.refusal(await world.command(name, {"id": job_id}, user=stranger))
        assert refused.before_defer, name
        assert f"no job `{job_id}` of yours" in refused.text, name

    click = await world.fake.click(stranger, reply, f"pika:cancel:{job_id}")
    done = await world.fake.wait_for_response(click)
    assert done.response is not None
    assert done.response.ephemeral
    assert "not your job" in done.response.data["content"]

    assert world.bot is not None
    job = await world.bot.jobs.get(job_id)
    assert job is not None
    assert job.state in {JobState.SUBMITTED, JobState.RUNNING}
    assert world.fal.counts["cancel"] == 0
    # The requester still can.
    await world.command("pika cancel", {"id": job_id})
    ended = await world.job(job_id)
    assert ended.state is JobState.CANCELLED
