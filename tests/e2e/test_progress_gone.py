"""Progress edits stop for a reply Discord will never take an edit for: a deleted channel (404
Unknown Channel, every job there) or a channel the bot may no longer see (403, that job)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import discord
import pytest

from bot.jobs.discord.delivery import DiscordMessenger
from bot.jobs.messenger import Progress, Stage
from bot.jobs.progress import ProgressBoard
from bot.store import Job
from tests.e2e.conftest import World, job_id_of

INTERVAL = 5.0


class Ticks:
    """The board's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def a_finished_job(world: World) -> Job:
    await world.command("pika text", {"prompt": "a reply to edit"})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    return await world.job(job_id_of(post))


def edits(world: World, job: Job) -> list[int]:
    """The answers to every edit of the job's progress reply (through the token or the bot)."""
    return [
        r.status
        for r in world.fake.requests
        if r.method == "PATCH"
        and (r.path.endswith("/@original") or r.path.endswith(f"/{job.progress_message_id}"))
    ]


@pytest.mark.parametrize("refusal", ["deleted", "forbidden"])
async def test_a_progress_reply_discord_refuses_for_good_is_not_edited_again(
    world: World, refusal: str
) -> None:
    job = await a_finished_job(world)
    assert world.bot is not None
    if refusal == "deleted":
        await world.fake.delete_channel(world.fake.channel)
    else:
        # Past the token's life, edits go through the channel, which the bot may no longer see.
        world.clock.advance(timedelta(minutes=20))
        deny = discord.Permissions(view_channel=True).value
        await world.fake.set_bot_permissions(world.fake.channel, deny=deny)
    messenger = DiscordMessenger(
        world.bot, default_upload_limit=10 * 1024 * 1024, clock=world.epoch
    )
    ticks = Ticks()
    board = ProgressBoard(messenger.show_progress, interval=INTERVAL, clock=ticks)
    before = len(edits(world, job))

    board.report(job, Progress(Stage.GENERATING, elapsed_s=1))
    assert await board.flush() == 1
    assert edits(world, job)[before:] == [404 if refusal == "deleted" else 403]

    ticks.now += 2 * INTERVAL
    board.report(job, Progress(Stage.GENERATING, elapsed_s=11))
    assert job.progress_message_id is not None
    neighbour = dataclasses.replace(
        job, id="neighbour", progress_message_id=job.progress_message_id + 1
    )
    board.report(neighbour, Progress(Stage.GENERATING, elapsed_s=11))
    sent = await board.flush()
    assert len(edits(world, job)) == before + 1, "the refused reply was edited again"
    # A deleted channel takes every job's reply with it; a refusal only the job's own.
    assert sent == (0 if refusal == "deleted" else 1)
