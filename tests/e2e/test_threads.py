"""Threads and forum posts: the allow-list goes by the parent channel, the video into the thread."""

from __future__ import annotations

from typing import Any

import discord

from bot.sandbox.fakediscord import Channel
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from tests.e2e.conftest import World, embed_text, job_id_of


async def admin(world: World, name: str, options: dict[str, Any]) -> str:
    """Run an admin command as the server's owner; what it answered (only to them)."""
    interaction = await world.command(name, options, user=world.fake.owner)
    response = await world.fake.wait_for_response(interaction)
    assert response.response is not None
    assert response.response.ephemeral
    original = await world.wait_for(lambda: interaction.original)
    return original.content + "\n" + embed_text(original)


async def progress(world: World, interaction: FakeInteraction) -> StoredMessage:
    """The command's progress reply once it shows the job."""
    return await world.wait_for(
        lambda: (
            interaction.original if interaction.original and interaction.original.embeds else None
        )
    )


async def video_in(world: World, thread: Channel) -> StoredMessage:
    """The video posted in the thread, once its job has ended."""
    post = await world.wait_for(lambda: (world.posts(thread) or [None])[0])
    job = await world.job(job_id_of(post))
    assert job.state == "delivered"
    assert job.delivery_path == "channel"
    assert job.channel_id == thread.id
    return post


async def test_a_thread_of_an_allowed_channel_is_allowed_and_gets_the_video(world: World) -> None:
    videos = await world.fake.add_text_channel("videos")
    await admin(world, "pikaadmin channels allow", {"channel": videos.id})
    thread = await world.fake.add_thread(videos, "ideas")
    interaction = await world.command("pika text", {"prompt": "a fox"}, channel=thread)
    await progress(world, interaction)
    await video_in(world, thread)
    assert not world.posts(videos), "the video went to the parent, not the thread"


async def test_a_thread_of_a_channel_not_allowed_is_refused(world: World) -> None:
    videos = await world.fake.add_text_channel("videos")
    await admin(world, "pikaadmin channels allow", {"channel": videos.id})
    thread = await world.fake.add_thread(world.fake.channel, "elsewhere")
    refused = await world.refusal(
        await world.command("pika text", {"prompt": "a fox"}, channel=thread)
    )
    assert f"<#{videos.id}>" in refused.text
    assert world.fal.counts["submit"] == 0


async def test_a_forum_channel_can_be_allowed_and_its_posts_make_videos(world: World) -> None:
    forum = await world.fake.add_forum_channel("art")
    said = await admin(world, "pikaadmin channels allow", {"channel": forum.id})
    assert f"<#{forum.id}>" in said
    post = await world.fake.add_thread(forum, "my cat, animated")
    interaction = await world.command("pika text", {"prompt": "a cat"}, channel=post)
    await progress(world, interaction)
    await video_in(world, post)


async def test_in_a_thread_send_messages_in_threads_is_what_counts(world: World) -> None:
    # Members may talk only in the channel's threads; so may the bot.
    await world.fake.set_bot_permissions(
        world.fake.channel, deny=discord.Permissions(send_messages=True).value
    )
    thread = await world.fake.add_thread(world.fake.channel, "talk here")
    interaction = await world.command("pika text", {"prompt": "a fox"}, channel=thread)
    reply = await progress(world, interaction)
    assert "Heads-up" not in embed_text(reply)
    await video_in(world, thread)


async def test_in_a_thread_without_send_messages_in_threads_the_heads_up_names_it(
    world: World,
) -> None:
    await world.fake.set_bot_permissions(
        world.fake.channel, deny=discord.Permissions(send_messages_in_threads=True).value
    )
    thread = await world.fake.add_thread(world.fake.channel, "read only for the bot")
    interaction = await world.command("pika text", {"prompt": "a fox"}, channel=thread)
    reply = await progress(world, interaction)
    fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
    assert "Send Messages in Threads" in fields["Heads-up"]
