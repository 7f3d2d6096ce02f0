"""Removed from a server: jobs fal has not started end refunded and are never sent; jobs fal
has started are delivered by DM, or refunded when nobody would take the video."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.emulator import JobScript
from bot.sandbox.fakediscord.records import StoredMessage
from bot.store import LedgerKind
from tests.e2e.conftest import World

TOKEN_LIFE_S = 16 * 60  # past the 15 minutes of an interaction token


def dms(world: World) -> list[StoredMessage]:
    return world.fake.messages(world.fake.world.dm_channel(world.fake.member.id))


async def one_at_fal_one_waiting(world: World) -> tuple[str, str]:
    """Two jobs of the member with one fal slot: the first held in fal's queue, the second
    waiting in the bot's queue. Their ids, in that order."""
    world.fal.script_next(JobScript(hold_in_queue=True))
    await world.command("pika text", {"prompt": "first"})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, "IN_QUEUE")
    second = await world.command("pika text", {"prompt": "second"})
    await world.wait_for(lambda: second.original is not None and second.original.embeds)
    rows = await world.jobs()
    first = next(j for j in rows if j.fal_request_id == submission.request_id)
    waiting = next(j for j in rows if j.id != first.id)
    assert waiting.state == "queued"
    return first.id, waiting.id


@pytest.mark.world(fal_concurrency=1)
async def test_removal_cancels_and_refunds_the_waiting_job_and_never_sends_it(
    world: World,
) -> None:
    first_id, second_id = await one_at_fal_one_waiting(world)

    await world.fake.remove_bot()
    second = await world.job(second_id)
    assert second.state == "cancelled"
    assert second.error_code == "left_server"
    assert [e.kind for e in await world.store.ledger.for_job(second_id)] == [  # type: ignore[union-attr]
        LedgerKind.RESERVE,
        LedgerKind.REFUND,
    ]
    # The slot the first job frees is not given to the cancelled one.
    await world.fal.advance((await world.submission()).request_id)
    await world.fal.advance((await world.submission()).request_id)
    first = await world.job(first_id)
    assert first.state == "delivered"
    assert world.fal.counts["submit"] == 1


@pytest.mark.world(fal_concurrency=1)
async def test_a_waiting_job_of_a_server_left_while_the_bot_was_down_is_never_sent(
    world: World,
) -> None:
    first_id, second_id = await one_at_fal_one_waiting(world)
    await world.stop()
    await world.fake.remove_bot()  # nobody is connected to hear it
    world.clock.advance(TOKEN_LIFE_S)
    await world.start()
    request_id = (await world.submission()).request_id
    await world.fal.advance(request_id)
    await world.fal.advance(request_id)

    first = await world.job(first_id)
    second = await world.job(second_id)
    assert second.state == "cancelled"
    assert second.error_code == "left_server"
    assert world.fal.counts["submit"] == 1
    assert [e.kind for e in await world.store.ledger.for_job(second_id)] == [  # type: ignore[union-attr]
        LedgerKind.RESERVE,
        LedgerKind.REFUND,
    ]
    # The first was at fal: fal billed it, and it came by DM (the channel is out of reach).
    assert first.state == "delivered"
    assert first.delivery_path == "dm"
    assert any(m.attachments for m in dms(world))
    assert [e.kind for e in await world.store.ledger.for_job(first_id)] == [  # type: ignore[union-attr]
        LedgerKind.RESERVE,
        LedgerKind.SETTLE,
    ]
    # The member was told in a DM why the second never ran.
    assert any(second_id in (m.content or "") and "removed" in m.content for m in dms(world))


async def test_a_video_of_a_server_left_that_nobody_takes_is_kept_and_given_back(
    world: World,
) -> None:
    world.fal.script_next(JobScript(hold_in_queue=True))
    await world.command("pika text", {"prompt": "no way home"})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, "IN_QUEUE")
    [job] = await world.jobs()
    world.clock.advance(TOKEN_LIFE_S)
    world.fake.close_dms(world.fake.member)
    await world.fake.remove_bot()
    await world.fal.advance(submission.request_id)
    await world.fal.advance(submission.request_id)

    ended = await world.job(job.id)
    assert ended.state == "delivered"
    assert ended.delivery_path == "kept"
    assert ended.output_path is not None
    # Given back to the member; fal billed it, so the day's spend still counts it.
    assert [e.kind for e in await world.ledger()] == [LedgerKind.RESERVE, LedgerKind.WRITE_OFF]


@pytest.mark.world(fal_concurrency=1)
async def test_a_waiting_job_is_not_sent_before_the_guilds_arrive_after_a_restart(
    world: World,
) -> None:
    _, second_id = await one_at_fal_one_waiting(world)
    await world.stop()
    await world.fake.remove_bot()  # nobody is connected to hear it
    # Discord is slow to send READY and the guilds; fal finishes the first job meanwhile, which
    # frees the one slot for the waiting job of the server the bot has left.
    gate = world.fake.hold_ready()
    starting = asyncio.create_task(world.start())
    request_id = (await world.submission()).request_id
    await world.fal.advance(request_id)
    await world.fal.advance(request_id)
    assert world.bot is not None
    jobs = world.bot.jobs
    task = await world.wait_for(lambda: jobs._tasks.get(second_id))
    # Its task waits for the guilds (the messenger's ready) before anything else.
    await world.wait_for(lambda: waiting_in(task, "ready") or None)
    assert world.fal.counts["submit"] == 1, "sent to fal before the bot knew its servers"
    gate.set()
    await starting
    second = await world.job(second_id)
    assert second.state == "cancelled"
    assert second.error_code == "left_server"
    assert world.fal.counts["submit"] == 1


def waiting_in(task: asyncio.Task[None], function: str) -> bool:
    """Whether the task is suspended inside a call of `function` (its chain of awaits says so)."""
    awaited: Any = task.get_coro()
    while awaited is not None:
        code = getattr(awaited, "cr_code", None)
        if code is not None and code.co_name == function:
            return True
        awaited = getattr(awaited, "cr_await", None)
    return False
