"""Once a job is accepted, no error says "nothing was charged": it names it and says it runs."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from bot.emulator import Fault, JobScript
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from bot.store import LedgerKind
from tests.e2e.conftest import World, job_id_of

NOTHING_CHARGED = "Nothing was charged"


def said(world: World) -> str:
    """Everything the bot wrote in the channel, ephemeral and deleted messages too."""
    return "\n".join(m.content for m in world.bot_messages())


async def delivered(world: World) -> StoredMessage:
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    job = await world.job(job_id_of(post))
    assert job.state == "delivered"
    assert world.store is not None
    assert [e.kind for e in await world.store.ledger.for_job(job.id)] == [
        LedgerKind.RESERVE,
        LedgerKind.SETTLE,
    ]
    return post


def told(interaction: FakeInteraction) -> str:
    """What the member alone was told through an interaction's followups."""
    return "\n".join(m.content for m in interaction.followups if m.ephemeral)


async def test_a_dropped_first_progress_reply_keeps_the_reply_and_the_job(world: World) -> None:
    # The connection breaks while the bot shows the accepted job's first progress reply.
    hold = world.fake.hold_next("PATCH", "/webhooks/*/*/messages/@original")
    interaction = await world.command("pika text", {"prompt": "a kite over the dunes"})
    await hold.wait()
    hold.drop()
    post = await delivered(world)
    assert interaction.original is not None
    assert not interaction.original.deleted, "the accepted job's reply was deleted"
    assert job_id_of(post) in interaction.original.embeds[0]["footer"]["text"]
    assert NOTHING_CHARGED not in said(world)


async def test_a_database_error_after_acceptance_says_the_job_is_accepted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert world.store is not None
    store = world.store
    real = store.jobs.update

    async def locked_once(job_id: str, **fields: Any) -> Any:
        if "progress_message_id" in fields:
            monkeypatch.setattr(store.jobs, "update", real)
            raise sqlite3.OperationalError("database is locked")
        return await real(job_id, **fields)

    monkeypatch.setattr(store.jobs, "update", locked_once)
    interaction = await world.command("pika text", {"prompt": "a kite over the dunes"})
    answer = await world.wait_for(lambda: told(interaction) or None)
    post = await delivered(world)
    job_id = job_id_of(post)
    assert f"Your job `{job_id}` is accepted and will run" in answer
    assert "reference" in answer
    assert interaction.original is not None
    assert not interaction.original.deleted
    assert NOTHING_CHARGED not in said(world)


async def held_at_fal(world: World) -> tuple[FakeInteraction, str, str]:
    """A job fal is generating (until advanced); its command, request id and job id."""
    world.fal.script_next(JobScript(hold_in_progress=True))
    interaction = await world.command("pika text", {"prompt": "a long take"})
    submission = await world.submission()
    reply = await world.progress_says(interaction, "Generating")
    return interaction, submission.request_id, job_id_of(reply)


async def test_a_failed_fal_cancel_from_the_command_says_the_job_still_runs(world: World) -> None:
    _, request_id, job_id = await held_at_fal(world)
    world.fal.inject(Fault(kind="cancel", status=500, times=10))
    cancel = await world.command("pika cancel", {"id": job_id})
    answer = await world.wait_for(lambda: told(cancel) or None)
    assert f"Your job `{job_id}` is accepted and still running" in answer
    assert NOTHING_CHARGED not in said(world)
    await world.fal.advance(request_id)
    await delivered(world)


async def test_a_failed_fal_cancel_from_the_button_is_deferred_and_says_the_job_still_runs(
    world: World,
) -> None:
    interaction, request_id, job_id = await held_at_fal(world)
    world.fal.inject(Fault(kind="cancel", status=500, times=10))
    assert interaction.original is not None
    click = await world.fake.click(world.fake.member, interaction.original, f"pika:cancel:{job_id}")
    response = await world.wait_for(lambda: click.response)
    # Acknowledged before asking fal, whose retries may outlast Discord's 3 seconds.
    assert response.type == 5
    assert response.ephemeral
    answer = await world.wait_for(lambda: told(click) or None)
    assert f"Your job `{job_id}` is accepted and still running" in answer
    assert NOTHING_CHARGED not in said(world)
    await world.fal.advance(request_id)
    await delivered(world)
