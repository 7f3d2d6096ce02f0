"""Stopping the bot lets the commands already being handled finish before the store closes."""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import World


async def test_a_command_in_flight_when_the_bot_stops_is_finished_then_resumed(
    world: World,
) -> None:
    assert world.bot is not None
    # The command has been acknowledged, but its callback's answer is held back.
    hold = world.fake.hold_next("POST", "/interactions/*/callback", before=False)
    interaction = await world.command("pika text", {"prompt": "a ship in a bottle"})
    await hold.wait()
    stopping = asyncio.create_task(world.stop())
    await world.bot.closing.wait()
    hold.release()
    await stopping

    progress = await world.wait_for(lambda: interaction.original)
    assert "job " in (progress.embeds[0]["footer"]["text"] if progress.embeds else "")
    await world.start()
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    assert post.pings.users == {world.fake.member.id}
    assert len(world.fal.submissions) == 1
