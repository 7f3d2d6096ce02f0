"""A bot restarted with a video still to post waits for Discord's guilds before posting it: the
upload limit and the permissions it checks come from the guild cache."""

from __future__ import annotations

import asyncio

import discord

from bot.store import DeliveryPath, JobState
from tests.e2e.conftest import World, job_id_of


async def test_a_resumed_delivery_waits_for_the_guilds_and_knows_the_permissions(
    world: World,
) -> None:
    fake = world.fake
    # The bot stops with the video downloaded, before it was posted.
    held = fake.hold_next("POST", "/channels/*/messages", before=True)
    await world.command("pika text", {"prompt": "posted after a restart"})
    await held.wait()
    [job] = await world.jobs()
    await world.stop()
    held.drop()
    # Meanwhile the bot lost Attach Files there: its cache will say so once the guild arrives.
    await fake.set_bot_permissions(fake.channel, deny=discord.Permissions(attach_files=True).value)

    # Discord is slow to send READY and the guilds; REST works meanwhile.
    gate = fake.hold_ready()
    starting = asyncio.create_task(world.start())
    dm = fake.world.dm_channel(fake.member.id)
    dm_history = f"/channels/{dm.id}/messages"
    # The resumed job has looked for an earlier delivery (its last look is the DM history).
    await world.wait_for(lambda: fake.requests_to("GET", dm_history) or None)
    gate.set()
    await starting

    video = await world.wait_for(
        lambda: next((m for m in fake.messages(dm) if m.attachments), None)
    )
    done = await world.job(job.id)
    assert job_id_of(video) == job.id
    assert done.state is JobState.DELIVERED
    assert done.delivery_path == DeliveryPath.DM
    assert "Attach Files" in video.content
    # It never tried the channel it could not post in (each refusal counts towards a ban).
    refused = [f"{r.method} {r.path}" for r in fake.requests if r.status == 403]
    assert refused == []


async def test_a_bot_that_never_gets_ready_stops_cleanly_and_posts_at_the_next_start(
    world: World,
) -> None:
    fake = world.fake
    held = fake.hold_next("POST", "/channels/*/messages", before=True)
    await world.command("pika text", {"prompt": "no READY this time"})
    await held.wait()
    [job] = await world.jobs()
    await world.stop()
    held.drop()

    gate = fake.hold_ready()
    starting = asyncio.create_task(world.start())
    dm = fake.world.dm_channel(fake.member.id)
    await world.wait_for(lambda: fake.requests_to("GET", f"/channels/{dm.id}/messages") or None)
    starting.cancel()
    await asyncio.gather(starting, return_exceptions=True)
    await world.stop()  # stopped while the resumed job waits for the guilds
    assert world.store is None
    assert not world.posts()

    gate.set()
    await world.start()
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    done = await world.job(job_id_of(post))
    assert done.id == job.id
    assert done.state is JobState.DELIVERED
    assert done.delivery_path == DeliveryPath.CHANNEL
    assert len(world.posts()) == 1
