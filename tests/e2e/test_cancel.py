"""The Cancel button on the progress reply: in the bot's queue, and once fal is generating."""

from __future__ import annotations

import pytest

from bot.emulator import JobScript
from bot.sandbox.fakediscord.records import FakeInteraction, InteractionResponse, StoredMessage
from bot.store import LedgerKind
from tests.e2e.conftest import World, embed_text, job_id_of


async def click_cancel(world: World, reply: StoredMessage, user: object = None) -> str:
    """Press Cancel on a progress reply; the answer, which must be for the clicker alone."""
    [custom_id] = [
        c["custom_id"]
        for row in reply.components
        for c in row.get("components", [])
        if str(c.get("custom_id", "")).startswith("pika:cancel:")
    ]
    click: FakeInteraction = await world.fake.click(user or world.fake.member, reply, custom_id)
    response: InteractionResponse = await world.wait_for(lambda: click.response)
    assert response.ephemeral
    if response.type == 4:  # a refusal, answered at once
        return str(response.data["content"])
    # Asking fal may outlast Discord's 3 seconds: the click is deferred, then answered.
    assert response.type == 5
    answer = await world.wait_for(
        lambda: click.original if click.original and click.original.content else None
    )
    assert answer.ephemeral
    assert not answer.deleted
    return str(answer.content)


@pytest.mark.world(fal_concurrency=1)
async def test_a_job_waiting_in_the_bots_queue_is_cancelled_and_refunded(world: World) -> None:
    fal = world.fal
    fal.script_next(JobScript(hold_in_progress=True))
    await world.command("pika text", {"prompt": "takes the slot", "seed": 1})
    first = await world.submission()
    await fal.wait_for_status(first.request_id, "IN_PROGRESS")
    waiting = await world.command("pika text", {"prompt": "never sent", "seed": 2})
    reply = await world.progress_says(waiting, "next in line")

    bob = await world.fake.add_member("bob")
    assert "not your job" in await click_cancel(world, reply, bob)
    answer = await click_cancel(world, reply)
    assert "Cancelled before it started" in answer
    assert "not charged" in answer

    [cancelled] = [j for j in await world.jobs() if j.seed == 2]
    assert cancelled.state == "cancelled"
    assert world.store is not None
    kinds = [e.kind for e in await world.store.ledger.for_job(cancelled.id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.REFUND]
    await world.progress_says(waiting, "Cancelled")

    # The freed place is not given to the cancelled job when the slot frees.
    await fal.advance(first.request_id)
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    await world.job(job_id_of(post))
    assert [s.body["prompt"] for s in fal.submissions] == ["takes the slot"]
    assert fal.counts["cancel"] == 0


async def test_a_job_fal_is_generating_is_asked_to_stop_at_fal(world: World) -> None:
    fal = world.fal
    fal.script_next(JobScript(hold_in_progress=True))
    interaction = await world.command("pika text", {"prompt": "a long take", "seed": 5})
    submission = await world.submission()
    reply = await world.progress_says(interaction, "Generating")

    answer = await click_cancel(world, reply)
    assert "Asked fal to stop it" in answer
    assert fal.counts["cancel"] == 1

    # fal may still finish a request it had started (and bill it): the video is delivered.
    await fal.advance(submission.request_id)
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    job = await world.job(job_id_of(post))
    assert job.state == "delivered"
    assert world.store is not None
    kinds = [e.kind for e in await world.store.ledger.for_job(job.id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.SETTLE]
    assert "Done" in embed_text(world.fake.message(reply.id))
