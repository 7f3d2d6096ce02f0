"""discord.py's view store stays flat however many jobs the bot posts: every button is dynamic."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import World, job_id_of, png

JOBS = 5


def per_message_views(world: World) -> dict[str, int]:
    """What discord.py's view store keeps per message (read through the bot's connection)."""
    assert world.bot is not None
    store: Any = world.bot._connection._view_store
    return {
        "synced message views": len(store._synced_message_views),
        "messages with dispatchable items": sum(1 for key in store._views if key is not None),
        "persistent views": len(store.persistent_views),
    }


@pytest.mark.world(max_jobs_per_member=JOBS, daily_allowance=10_000)
async def test_jobs_leave_no_view_in_discord_pys_view_store(world: World) -> None:
    for n in range(JOBS):
        interaction = await world.command("pika text", {"prompt": f"a lighthouse, take {n}"})
        # Its progress reply (with Cancel) is up before the video comes.
        await world.wait_for(
            lambda i=interaction: i.original if i.original and i.original.embeds else None
        )
    posts = await world.wait_for(lambda: world.posts() if len(world.posts()) == JOBS else None)
    for post in posts:
        await world.job(job_id_of(post))
    # /pika job shows a delivered job again, with the result buttons, in an ephemeral reply.
    shown = await world.command("pika job", {"id": job_id_of(posts[0])})
    await world.fake.wait_for_response(shown)
    assert per_message_views(world) == {
        "synced message views": 0,
        "messages with dispatchable items": 0,
        "persistent views": 0,
    }


async def test_modals_left_open_are_not_kept_for_ever(world: World) -> None:
    fake = world.fake
    message = await fake.post_message(
        fake.member, fake.channel, "look", attachments=[world.attach(png(), "dog.png")]
    )
    opened = await fake.message_command(fake.member, fake.channel, "Animate with Pika", message)
    await world.wait_for(lambda: opened.modal)
    await world.command("pika text", {"prompt": "a lighthouse"})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    remix = await fake.click(fake.member, post, f"pika:remix:{job_id_of(post)}")
    await world.wait_for(lambda: remix.modal)
    # Neither modal is submitted: discord.py keeps each until it times out.
    assert world.bot is not None
    store: Any = world.bot._connection._view_store
    timeouts = [modal.timeout for modal in store._modals.values()]
    assert len(timeouts) == 2
    assert None not in timeouts
