"""The bot's own queue is fair: one member's burst never holds up another member's first job,
and waiting jobs show their place in line as it moves up."""

from __future__ import annotations

import pytest

from bot.emulator import JobScript
from tests.e2e.conftest import World


async def finish(world: World, request_id: str) -> None:
    """Let a held job at fal run to the end, from whichever stage it is in."""
    while await world.fal.advance(request_id) != "COMPLETED":
        pass


@pytest.mark.world(fal_concurrency=1, max_jobs_per_member=5)
async def test_a_burst_of_five_does_not_hold_up_another_members_first_job(world: World) -> None:
    world.fal.default_script = JobScript(hold_in_progress=True)
    alice = world.fake.member
    bob = await world.fake.add_member("bob")
    replies = {}
    for n in range(1, 6):
        replies[f"a{n}"] = await world.command("pika text", {"prompt": f"a{n}"}, user=alice)
        await world.progress_says(replies[f"a{n}"], "credits (reserved)")
    first = await world.submission(1)
    assert first.body["prompt"] == "a1"
    replies["b1"] = await world.command("pika text", {"prompt": "b1"}, user=bob)
    await world.progress_says(replies["b1"], "next in line")
    # Alice's last job waits behind her three others and Bob's one.
    await world.progress_says(replies["a5"], "position 5")

    started = [first.body["prompt"]]
    for number in range(2, 7):
        previous = await world.submission(number - 1)
        await finish(world, previous.request_id)
        started.append((await world.submission(number)).body["prompt"])
        if number == 2:
            # One job started, so everyone behind it moved up a place.
            await world.progress_says(replies["a5"], "position 4")
    assert "b1" in started[1:3]  # Bob's only job is among the next two to start
    assert started == ["a1", "b1", "a2", "a3", "a4", "a5"]
    await finish(world, (await world.submission(6)).request_id)
    assert world.store is not None
    jobs = await world.store.jobs.recent(alice.id, limit=10)
    for job in jobs:
        assert (await world.job(job.id)).state == "delivered"
