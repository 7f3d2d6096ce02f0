"""The progress reply: where the job is (bot's queue, fal's queue, generating, done), throttled."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest

from bot.emulator import JobScript
from bot.sandbox.fakediscord.records import MessageVersion, StoredMessage
from tests.e2e.conftest import World

PROGRESS_WORDS = ("Waiting", "Sent to fal", "Generating", "Finished; fetching")


def versions(message: StoredMessage) -> list[MessageVersion]:
    """Every state the message went through, the current one last."""
    return [*message.history, message.snapshot()]


def status_of(version: MessageVersion) -> str:
    for embed in version.embeds:
        for item in embed.get("fields", []):
            if item["name"] == "Status":
                return str(item["value"])
    return ""


@pytest.mark.world(fal_concurrency=1, progress_interval=1.0)
async def test_the_reply_follows_the_job_from_the_bots_queue_to_the_video(world: World) -> None:
    fal, fake = world.fal, world.fake
    bob = await fake.add_member("bob")
    fal.script_next(
        JobScript(hold_in_progress=True),  # the member's first job keeps the only fal slot
        JobScript(),  # bob's job
        JobScript(hold_in_queue=True, hold_in_progress=True),  # the watched job
    )
    await world.command("pika text", {"prompt": "first", "seed": 1})
    first = await world.submission(1)
    await fal.wait_for_status(first.request_id, "IN_PROGRESS")
    watched = await world.command("pika text", {"prompt": "watched", "seed": 2})
    await world.progress_says(watched, "next in line")
    # While the member has a job at fal and bob none, bob's job is ahead of the watched one.
    await world.command("pika text", {"prompt": "bob's", "seed": 3}, user=bob)
    await world.progress_says(watched, "Waiting in the bot's queue: position 2")

    # The member's job leaves fal: neither member has one there, and bob's turn comes first
    # (the member's last job started more recently), as the reply said.
    await fal.advance(first.request_id)
    assert (await world.submission(2)).body["prompt"] == "bob's"
    mine = await world.submission(3)
    assert mine.body["prompt"] == "watched"
    await world.progress_says(watched, "waiting in fal's queue")
    await fal.advance(mine.request_id)
    await world.progress_says(watched, "Generating")
    await fal.advance(mine.request_id)
    reply = await world.progress_says(watched, "Done")
    await world.wait_for(lambda: len(world.posts()) == 3)

    statuses = [status_of(v) for v in versions(reply)]
    assert statuses[0] == ""  # the deferred "thinking" placeholder
    seen = [s for s in statuses if s.startswith(PROGRESS_WORDS)]
    order = ["next in line", "position 2", "fal's queue", "Generating"]
    firsts = [next(i for i, s in enumerate(seen) if words in s) for words in order]
    assert firsts == sorted(firsts), seen
    assert statuses[-1].startswith("Done")


@pytest.mark.world(progress_interval=1.0)
async def test_progress_edits_of_one_reply_are_at_least_the_interval_apart(world: World) -> None:
    fal = world.fal
    # fal's queue position changes every 0.1 s and generating ticks: far more news than edits.
    fal.script_next(JobScript(queue_position=12, queue_seconds=1.3, run_seconds=2.2))
    interaction = await world.command("pika text", {"prompt": "busy", "seed": 1})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    assert post is not None
    reply = interaction.original
    assert reply is not None

    progress = [v for v in versions(reply) if status_of(v).startswith(PROGRESS_WORDS)]
    assert len(progress) >= 3, [status_of(v) for v in versions(reply)]
    interval = timedelta(seconds=world.settings.progress_interval)
    gaps = [later.at - earlier.at for earlier, later in pairwise(progress)]
    assert all(gap >= interval for gap in gaps), gaps
