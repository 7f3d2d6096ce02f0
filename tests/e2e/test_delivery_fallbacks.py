"""Size-aware delivery and what happens when the channel refuses the video."""

from __future__ import annotations

from typing import Any

import discord

from bot.emulator import JobScript
from bot.sandbox.fakediscord.records import StoredMessage
from tests.e2e.conftest import World, decodes, job_id_of

MiB = 1024 * 1024


def uploads(world: World) -> list[Any]:
    """Every request the bot sent that carried files."""
    return [r for r in world.fake.requests if r.files]


def dms(world: World) -> list[StoredMessage]:
    channel = world.fake.world.dm_channel(world.fake.member.id)
    return world.fake.messages(channel)


async def test_a_15_mb_video_is_re_encoded_under_a_10_mib_limit(world: World) -> None:
    world.fal.default_script = JobScript(output_size=15 * 1000 * 1000)
    await world.command("pika text", {"prompt": "a big video"})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    job = await world.job(job_id_of(post))
    assert job.output_size is not None
    assert job.output_size >= 15 * 1000 * 1000
    video = post.attachments[0].data
    assert len(video) < 10 * MiB
    assert decodes(video) > 0
    assert all(len(f.data) <= 10 * MiB for r in uploads(world) for f in r.files)
    assert job.delivery_path == "channel"


async def test_a_video_that_cannot_fit_is_posted_as_a_link(world: World) -> None:
    world.fake.set_attachment_size_limit(1024)
    await world.command("pika text", {"prompt": "tiny limit"})
    post = await world.wait_for(
        lambda: next(
            (m for m in world.fake.messages(world.fake.channel) if "ready" in (m.content or "")),
            None,
        )
    )
    job = await world.job(job_id_of(post))
    assert job.delivery_path == "link"
    assert not post.attachments
    fields = {f["name"]: f["value"] for f in post.embeds[0]["fields"]}
    assert job.video_url is not None
    assert job.video_url in fields["Video"]
    assert not uploads(world), "no request carried a file over the limit"
    assert job.output_path is not None


async def test_missing_attach_files_is_said_up_front_and_the_video_comes_by_dm(
    world: World,
) -> None:
    await world.fake.set_bot_permissions(
        world.fake.channel, deny=discord.Permissions(attach_files=True).value
    )
    world.fal.default_script = JobScript(hold_in_queue=True)
    interaction = await world.command("pika text", {"prompt": "no files here"})
    progress = await world.wait_for(
        lambda: (
            interaction.original if interaction.original and interaction.original.embeds else None
        )
    )
    warning = {f["name"]: f["value"] for f in progress.embeds[0]["fields"]}
    assert "Attach Files" in warning["Heads-up"]
    request_id = (await world.wait_for(lambda: world.fal.submissions or None))[0].request_id
    await world.fal.advance(request_id)
    dm = await world.wait_for(lambda: next((m for m in dms(world) if m.attachments), None))
    job = await world.job(job_id_of(dm))
    assert job.delivery_path == "dm"
    assert "Attach Files" in dm.content
    assert not world.posts()


async def test_a_deleted_channel_sends_the_video_by_dm(world: World) -> None:
    world.fal.default_script = JobScript(hold_in_queue=True)
    await world.command("pika text", {"prompt": "channel goes away"})
    request_id = (await world.wait_for(lambda: world.fal.submissions or None))[0].request_id
    await world.fake.delete_channel(world.fake.channel)
    await world.fal.advance(request_id)
    dm = await world.wait_for(lambda: next((m for m in dms(world) if m.attachments), None))
    job = await world.job(job_id_of(dm))
    assert job.delivery_path == "dm"
    assert job.state == "delivered"


async def test_with_dms_closed_the_video_is_kept_for_pika_job(world: World) -> None:
    world.fal.default_script = JobScript(hold_in_queue=True)
    other = await world.fake.add_text_channel("other")
    await world.command("pika text", {"prompt": "nowhere to go"})
    request_id = (await world.wait_for(lambda: world.fal.submissions or None))[0].request_id
    await world.fake.delete_channel(world.fake.channel)
    world.fake.close_dms(world.fake.member)
    await world.fal.advance(request_id)
    job = await world.job((await world.jobs())[0].id)
    assert job.delivery_path == "kept"
    assert job.state == "delivered"

    shown = await world.command("pika job", {"id": job.id}, channel=other)
    done = await world.fake.wait_for_response(shown)
    assert done.response is not None
    assert done.response.data["flags"] & 64
    message = await world.wait_for(lambda: done.original)
    assert message.attachments, "the kept video is handed back by /pika job"
    assert decodes(message.attachments[0].data) > 0
