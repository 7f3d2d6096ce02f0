"""Every way a job ends without a video gives its credits back in full, as one ledger row that
mirrors its reservation; and jobs made from other jobs are charged as new jobs."""

from __future__ import annotations

import pytest

from bot.emulator import Fault, JobScript
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from bot.store import JobState, LedgerKind
from tests.e2e.conftest import World, job_id_of


async def progress(world: World, interaction: FakeInteraction) -> str:
    """The job id of a command's progress reply, once it is shown."""
    message = await world.wait_for(
        lambda: (
            interaction.original
            if interaction.original is not None and interaction.original.embeds
            else None
        )
    )
    return str(message.embeds[0]["footer"]["text"]).removeprefix("job ")


async def kinds(world: World, job_id: str) -> list[tuple[LedgerKind, int]]:
    assert world.store is not None
    return [(entry.kind, entry.amount) for entry in await world.store.ledger.for_job(job_id)]


async def left(world: World) -> int:
    assert world.bot is not None
    quota = await world.bot.jobs.accounts.quota(world.fake.guild.id, world.fake.member.id, [])
    return quota.balance.left


async def ephemeral_answer(world: World, interaction: FakeInteraction) -> StoredMessage:
    """The (ephemeral) message a command answered with, after an ephemeral defer or not."""

    def answered() -> StoredMessage | None:
        if interaction.followups:
            return interaction.followups[0]
        response = interaction.response
        if response is not None and response.type == 4:
            return interaction.original
        return None

    message = await world.wait_for(answered)
    assert message is not None
    assert message.ephemeral
    return message


async def test_a_video_fal_fails_to_make_is_refunded(world: World) -> None:
    world.fal.script_next(JobScript(outcome="model_error", error_message="the model gave up"))
    job_id = await progress(world, await world.command("pika text", {"prompt": "a storm"}))
    job = await world.job(job_id)
    assert job.state == JobState.FAILED
    assert await kinds(world, job_id) == [(LedgerKind.RESERVE, 20), (LedgerKind.REFUND, 20)]
    assert await left(world) == 100


async def test_a_submit_fal_refuses_is_refunded(world: World) -> None:
    detail = [{"loc": ["body", "prompt"], "msg": "prompt refused", "type": "value_error"}]
    world.fal.inject(Fault(kind="submit", status=422, body={"detail": detail}))
    job_id = await progress(world, await world.command("pika text", {"prompt": "a storm"}))
    job = await world.job(job_id)
    assert job.state == JobState.FAILED
    assert job.error_code == "fal_validation"
    assert await kinds(world, job_id) == [(LedgerKind.RESERVE, 20), (LedgerKind.REFUND, 20)]
    assert await left(world) == 100


@pytest.mark.world(fal_concurrency=1)
async def test_cancelling_a_job_waiting_in_the_bots_queue_refunds_it(world: World) -> None:
    world.fal.default_script = JobScript(hold_in_progress=True)
    first = await progress(world, await world.command("pika text", {"prompt": "first"}))
    running = await world.submission(1)
    second = await progress(world, await world.command("pika text", {"prompt": "second"}))
    cancel = await world.command("pika cancel")  # the newest unfinished job: the queued one
    answer = await ephemeral_answer(world, cancel)
    assert f"Job `{second}`" in answer.content
    assert "Cancelled before it started" in answer.content
    assert (await world.job(second)).state == JobState.CANCELLED
    assert await kinds(world, second) == [(LedgerKind.RESERVE, 20), (LedgerKind.REFUND, 20)]
    assert world.store is not None
    refund = (await world.store.ledger.for_job(second))[1]
    assert refund.actor_id == world.fake.member.id  # the member cancelled it
    await world.fal.advance(running.request_id)
    assert (await world.job(first)).state == JobState.DELIVERED
    assert await kinds(world, first) == [(LedgerKind.RESERVE, 20), (LedgerKind.SETTLE, 20)]
    assert world.fal.counts["submit"] == 1  # the cancelled job never reached fal
    assert await left(world) == 80


async def test_cancelling_a_job_fal_has_not_started_refunds_it(world: World) -> None:
    world.fal.default_script = JobScript(hold_in_queue=True)
    job_id = await progress(world, await world.command("pika text", {"prompt": "held"}))
    await world.submission(1)
    cancel = await world.command("pika cancel", {"id": job_id.upper()})
    answer = await ephemeral_answer(world, cancel)
    assert "Asked fal to stop" in answer.content
    job = await world.job(job_id)
    assert job.state == JobState.CANCELLED
    assert await kinds(world, job_id) == [(LedgerKind.RESERVE, 20), (LedgerKind.REFUND, 20)]
    assert world.fal.counts["cancel"] == 1


async def test_nobody_cancels_another_members_job(world: World) -> None:
    world.fal.default_script = JobScript(hold_in_queue=True)
    job_id = await progress(world, await world.command("pika text", {"prompt": "mine"}))
    other = await world.fake.add_member("mallory")
    refused = await world.refusal(await world.command("pika cancel", {"id": job_id}, user=other))
    assert f"no job `{job_id}` of yours" in refused.text
    nothing = await world.refusal(await world.command("pika cancel", user=other))
    assert "no job waiting or running" in nothing.text
    assert world.fal.counts["cancel"] == 0
    assert await kinds(world, job_id) == [(LedgerKind.RESERVE, 20)]


@pytest.mark.world(fal_concurrency=1, job_deadline_seconds=60, job_hard_deadline_seconds=600)
async def test_jobs_past_their_deadline_are_cancelled_and_refunded_unless_fal_finishes(
    world: World,
) -> None:
    world.fal.default_script = JobScript(hold_in_progress=True)
    at_fal = await progress(world, await world.command("pika text", {"prompt": "at fal"}))
    request_id = (await world.submission(1)).request_id
    waiting = await progress(world, await world.command("pika text", {"prompt": "waiting"}))
    # The bot is down for two minutes: both jobs are past their deadline when it is back.
    await world.stop()
    world.clock.advance(120)
    await world.start()
    job = await world.job(waiting)
    assert job.state == JobState.FAILED
    assert job.error is not None
    assert "not charged" in job.error
    assert await kinds(world, waiting) == [(LedgerKind.RESERVE, 20), (LedgerKind.REFUND, 20)]
    assert world.fal.counts["submit"] == 1  # the waiting job was never sent
    # The one at fal was asked to stop; fal may still finish a running job (and bill for it),
    # and then the member gets the video and is charged for it.
    await world.wait_for(lambda: world.fal.counts["cancel"] == 1 or None)
    await world.fal.advance(request_id)
    done = await world.job(at_fal)
    assert done.state == JobState.DELIVERED
    assert await kinds(world, at_fal) == [(LedgerKind.RESERVE, 20), (LedgerKind.SETTLE, 20)]
    assert await left(world) == 80


@pytest.mark.world(job_deadline_seconds=60)
async def test_a_job_fal_finished_while_the_bot_was_down_past_its_deadline_is_delivered(
    world: World,
) -> None:
    world.fal.default_script = JobScript(hold_in_queue=True)
    job_id = await progress(world, await world.command("pika text", {"prompt": "late"}))
    request_id = (await world.submission(1)).request_id
    await world.stop()
    await world.fal.advance(request_id)
    await world.fal.advance(request_id)
    await world.fal.wait_for_status(request_id, "COMPLETED")
    world.clock.advance(120)
    await world.start()
    job = await world.job(job_id)
    assert job.state == JobState.DELIVERED
    assert await kinds(world, job_id) == [(LedgerKind.RESERVE, 20), (LedgerKind.SETTLE, 20)]
    assert len(world.posts()) == 1


@pytest.mark.world(job_deadline_seconds=60, job_hard_deadline_seconds=600)
async def test_a_job_fal_stops_after_its_deadline_is_refunded(world: World) -> None:
    world.fal.default_script = JobScript(hold_in_queue=True)
    job_id = await progress(world, await world.command("pika text", {"prompt": "too slow"}))
    await world.submission(1)
    await world.stop()
    world.clock.advance(120)
    await world.start()
    job = await world.job(job_id)
    assert job.state == JobState.FAILED
    assert job.error is not None
    assert "gave up" in job.error
    assert await kinds(world, job_id) == [(LedgerKind.RESERVE, 20), (LedgerKind.REFUND, 20)]
    assert world.fal.counts["cancel"] == 1


async def test_a_reroll_is_charged_like_a_new_job(world: World) -> None:
    assert world.bot is not None
    await world.bot.store.rules.set_member_limit(
        world.fake.guild.id, world.fake.member.id, 20, actor_id=world.fake.owner.id
    )
    await world.command("pika text", {"prompt": "only one"})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    job_id = job_id_of(post)
    await world.job(job_id)
    click = await world.fake.click(world.fake.member, post, f"pika:reroll:{job_id}")
    refused = await world.refusal(click)
    assert "costs 20 credits" in refused.text
    assert "0 left" in refused.text
    assert len(await world.jobs()) == 1
    assert world.fal.counts["submit"] == 1
    await world.bot.jobs.accounts.grant(
        world.fake.guild.id, world.fake.member.id, 20, actor_id=world.fake.owner.id
    )
    await world.fake.click(world.fake.member, post, f"pika:reroll:{job_id}")
    second = await world.wait_for(lambda: world.posts()[1] if len(world.posts()) > 1 else None)
    assert (await world.job(job_id_of(second))).parent_job_id == job_id
    assert await kinds(world, job_id_of(second)) == [
        (LedgerKind.RESERVE, 20),
        (LedgerKind.SETTLE, 20),
    ]
    assert await left(world) == 0
