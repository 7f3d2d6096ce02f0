"""A video Discord created before answering with an error is in the channel once: the post carries
the job's nonce with enforce_nonce, so Discord itself answers a repeat with the first message."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.emulator import JobScript
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from bot.store import DeliveryPath, Job, JobState
from tests.e2e.conftest import World, decodes, job_id_of

# Any post that could carry the video: a followup through the interaction or a channel post.
VIDEO_POST = re.compile(r"/webhooks/\d+/[^/]+|/channels/\d+/messages")


def videos(world: World) -> list[StoredMessage]:
    """Every message carrying a video, in the channel and in the member's DMs."""
    dm = world.fake.world.dm_channel(world.fake.member.id)
    messages = world.fake.messages(world.fake.channel) + world.fake.messages(dm)
    return [m for m in messages if m.attachments and not m.deleted]


def video_posts(world: World) -> list[str]:
    return [
        f"{r.method} {r.path} -> {r.status}"
        for r in world.fake.requests
        if r.method == "POST" and r.files and VIDEO_POST.fullmatch(r.path)
    ]


async def delivered(world: World, interaction: FakeInteraction) -> Job:
    await world.submission()
    [job] = [j for j in await world.jobs() if j.interaction_id == interaction.id]
    return await world.job(job.id)


async def test_a_video_created_before_a_502_is_posted_once(world: World) -> None:
    # Discord creates the message, then answers 502: discord.py sends the same request again.
    world.fake.fail_next("POST", VIDEO_POST, 502, after=True)
    interaction = await world.command("pika text", {"prompt": "created, then a 502"})
    job = await delivered(world, interaction)

    assert len(video_posts(world)) == 2, "discord.py retried the 502 itself"
    [video] = videos(world)
    assert job.state is JobState.DELIVERED
    assert job.delivery_path == DeliveryPath.CHANNEL
    assert job.result_message_id == video.id
    assert job_id_of(video) == job.id
    assert decodes(video.attachments[0].data) > 0
    assert video.pings.users == {world.fake.member.id}


async def test_the_bots_own_retry_is_refused_as_a_duplicate_even_unseen(world: World) -> None:
    # Past the interaction token's life, on a 503 (which discord.py does not retry on the bot's
    # routes) the bot tries again itself; its look at the channel first is refused here, so only
    # the job's nonce can tell Discord that the second post is the first one again.
    world.fal.script_next(JobScript(hold_in_progress=True))
    interaction = await world.command("pika text", {"prompt": "a 503, then unseen"})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, "IN_PROGRESS")
    world.clock.advance(timedelta(minutes=20))
    channel = world.fake.channel.id
    world.fake.fail_next("POST", f"/channels/{channel}/messages", 503, after=True)
    world.fake.fail_next("GET", f"/channels/{channel}/messages", 403, code=50001)
    await world.fal.advance(submission.request_id)
    job = await delivered(world, interaction)

    assert [r.split(" -> ")[1] for r in video_posts(world)] == ["503", "200"]
    assert [r.status for r in world.fake.requests_to("GET", f"/channels/{channel}/messages")][
        :1
    ] == [403]
    [video] = videos(world)
    assert video.via == "bot"
    assert job.state is JobState.DELIVERED
    assert job.delivery_path == DeliveryPath.CHANNEL
    assert job.result_message_id == video.id
