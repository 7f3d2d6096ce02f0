"""Discord misbehaving under the real bot: rate limits, server errors, dead tokens, refusals, a
channel that vanishes and closed DMs. Each job ends delivered once or refunded with a reason."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from bot.emulator import JobScript
from bot.jobs.discord.delivery import POST_ATTEMPTS
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from bot.store import DeliveryPath, Job, JobState
from tests.e2e.conftest import World, decodes, embed_text, job_id_of, png

NOT_CHARGED = "You were not charged."
ORIGINAL = "/webhooks/*/messages/@original"
CALLBACK = "/interactions/*/callback"
CHANNEL_POST = "/channels/*/messages"
# The video goes out as a channel post with the bot token and the job's nonce (never a followup).
DELIVERY = CHANNEL_POST


async def job_of(world: World, interaction: FakeInteraction, submission: int = 1) -> Job:
    """The job a command started (the `submission`th to reach fal), once the bot is done."""
    await world.submission(submission)
    [job] = [j for j in await world.jobs() if j.interaction_id == interaction.id]
    return await world.job(job.id)


async def ledger_kinds(world: World, job: Job) -> list[str]:
    assert world.store is not None
    return [str(entry.kind) for entry in await world.store.ledger.for_job(job.id)]


def videos_of(world: World, job: Job) -> list[StoredMessage]:
    """Every message carrying the job's video: in its channel and in the member's DMs."""
    dm = world.fake.world.dm_channel(world.fake.member.id)
    messages = world.fake.messages(world.fake.channel) + world.fake.messages(dm)
    return [
        m
        for m in messages
        if m.attachments and m.embeds and job_id_of(m) == job.id and not m.deleted
    ]


def dms(world: World) -> list[StoredMessage]:
    return world.fake.messages(world.fake.world.dm_channel(world.fake.member.id))


async def delivered_once(
    world: World, interaction: FakeInteraction, path: DeliveryPath = DeliveryPath.CHANNEL
) -> Job:
    job = await job_of(world, interaction)
    assert job.state is JobState.DELIVERED, job.error
    assert job.delivery_path == path
    [video] = videos_of(world, job)
    assert decodes(video.attachments[0].data) > 0
    assert await ledger_kinds(world, job) == ["reserve", "settle"]
    assert len(world.fal.submissions) == 1
    return job


async def next_job_works(world: World) -> None:
    """With Discord healthy again, a new job is delivered and charged as usual."""
    prompt = "and the next one works"
    await world.command("pika text", {"prompt": prompt})
    post = await world.wait_for(
        lambda: next((m for m in world.posts() if prompt in embed_text(m)), None)
    )
    job = await world.job(job_id_of(post))
    assert job.state is JobState.DELIVERED
    assert await ledger_kinds(world, job) == ["reserve", "settle"]


def answered(world: World, status: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in world.fake.requests if r.status == status]


# -- rate limits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", CALLBACK), ("PATCH", ORIGINAL), ("POST", DELIVERY)],
    ids=["defer", "first-reply", "delivery"],
)
@pytest.mark.parametrize("global_", [False, True], ids=["route", "global"])
async def test_a_429_with_retry_after_and_via_is_waited_out(
    world: World, method: str, path: str, global_: bool
) -> None:
    world.fake.fail_next(method, path, 429, retry_after=0.05, via=True, global_=global_, times=2)
    interaction = await world.command("pika text", {"prompt": "rate limited"})
    await delivered_once(world, interaction)
    assert len(answered(world, 429)) == 2
    await next_job_works(world)


async def test_a_429_without_via_still_gets_the_video_delivered(world: World) -> None:
    # Without Via it is Cloudflare's ban, not Discord's limit: discord.py raises at once.
    world.fake.fail_next("POST", DELIVERY, 429, retry_after=0.05, via=False)
    interaction = await world.command("pika text", {"prompt": "banned for a moment"})
    await delivered_once(world, interaction)
    assert len(answered(world, 429)) == 1
    await next_job_works(world)


# -- server errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_server_error_on_the_delivery_is_retried_and_posted_once(
    world: World, status: int
) -> None:
    world.fake.fail_next("POST", DELIVERY, status)
    interaction = await world.command("pika text", {"prompt": f"discord answers {status}"})
    await delivered_once(world, interaction)
    assert len(answered(world, status)) == 1
    await next_job_works(world)


async def outlive_the_token(
    world: World, prompt: str, **script: Any
) -> tuple[FakeInteraction, str]:
    """Start a job held at fal, then move the clock past its interaction token's life."""
    world.fal.script_next(JobScript(hold_in_progress=True, **script))
    interaction = await world.command("pika text", {"prompt": prompt})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, "IN_PROGRESS")
    world.clock.advance(timedelta(minutes=20))
    return interaction, submission.request_id


async def test_a_503_on_the_bot_token_post_is_tried_again_and_posted_once(world: World) -> None:
    # discord.py does not retry a 503 on the bot's own routes: the bot does.
    interaction, request_id = await outlive_the_token(world, "posted late, on the second try")
    world.fake.fail_next("POST", CHANNEL_POST, 503)
    await world.fal.advance(request_id)
    job = await delivered_once(world, interaction)
    [post] = videos_of(world, job)
    assert post.via == "bot"
    assert len(answered(world, 503)) == 1
    await next_job_works(world)


async def test_server_errors_on_every_post_send_the_video_by_dm(world: World) -> None:
    interaction, request_id = await outlive_the_token(world, "the channel never takes it")
    world.fake.fail_next("POST", f"/channels/{world.fake.channel.id}/messages", 503, times=9)
    await world.fal.advance(request_id)
    await delivered_once(world, interaction, DeliveryPath.DM)
    assert len(answered(world, 503)) == POST_ATTEMPTS


async def test_a_refused_first_reply_still_runs_the_charged_job(
    world: World,
) -> None:
    world.fake.fail_next("PATCH", ORIGINAL, 400)
    interaction = await world.command("pika text", {"prompt": "no first reply"})
    await delivered_once(world, interaction)
    said = [m.content for m in interaction.followups] + [
        interaction.original.content if interaction.original else ""
    ]
    assert not [text for text in said if "Nothing was charged" in text]
    await next_job_works(world)


async def test_failed_progress_edits_do_not_stop_the_job(world: World) -> None:
    interaction, request_id = await outlive_the_token(world, "edits fail")
    world.fake.fail_next("PATCH", "/channels/*/messages/*", 503, times=2)
    await world.wait_for(lambda: len(answered(world, 503)) == 2 or None)
    await world.fal.advance(request_id)
    await delivered_once(world, interaction)
    assert interaction.original is not None
    assert "Done" in embed_text(interaction.original)
    await next_job_works(world)


async def test_a_server_error_on_the_defer_is_retried(world: World) -> None:
    world.fake.fail_next("POST", CALLBACK, 503)
    interaction = await world.command("pika text", {"prompt": "acknowledged on the second try"})
    await delivered_once(world, interaction)
    assert len(answered(world, 503)) == 1
    await next_job_works(world)


async def test_an_attachment_discord_will_not_serve_is_refused_without_a_charge(
    world: World,
) -> None:
    world.fake.fail_next("GET", "/ephemeral-attachments/*", 503)
    image = world.attach(png(320, 320), "cat.png")
    interaction = await world.command("pika animate", {"image": image, "prompt": "a cat"})
    refusal = await world.refusal(interaction)
    assert not refusal.before_defer
    assert "did not hand over the file in `image`" in refusal.text
    assert "Nothing was charged" in refusal.text
    assert await world.jobs() == []
    assert await world.ledger() == []
    assert world.fal.counts["submit"] == 0
    await next_job_works(world)


# -- tokens ------------------------------------------------------------------------------------


async def test_a_token_discord_calls_dead_early_is_never_used_again(world: World) -> None:
    world.fal.script_next(JobScript(hold_in_progress=True))
    interaction = await world.command("pika text", {"prompt": "token dies early"})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, "IN_PROGRESS")
    # From now on Discord refuses this token, though the bot's clock says it has minutes left.
    world.fake.fail_next("*", f"/webhooks/*/{interaction.token}*", 401, code=50027, times=100)
    await world.wait_for(lambda: answered(world, 401) or None)
    await world.fal.advance(submission.request_id)
    job = await delivered_once(world, interaction)
    assert len(answered(world, 401)) == 1, "a dead token is not tried again"
    [post] = videos_of(world, job)
    assert post.via == "bot"
    assert post.pings.users == {world.fake.member.id}
    assert interaction.original is not None
    assert "Done" in embed_text(interaction.original), "edited with the bot token"
    await next_job_works(world)


async def test_a_failure_after_the_token_died_is_told_in_the_channel(world: World) -> None:
    world.fal.script_next(JobScript(hold_in_progress=True, outcome="model_error"))
    interaction = await world.command("pika text", {"prompt": "fails after the token"})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, "IN_PROGRESS")
    world.fake.fail_next("*", f"/webhooks/*/{interaction.token}*", 401, code=50027, times=100)
    await world.wait_for(lambda: answered(world, 401) or None)
    await world.fal.advance(submission.request_id)
    job = await job_of(world, interaction)
    assert job.state is JobState.FAILED
    assert await ledger_kinds(world, job) == ["reserve", "refund"]
    notes = [m for m in world.bot_messages() if job.id in m.content and NOT_CHARGED in m.content]
    assert len(notes) == 1
    assert notes[0].pings.users == {world.fake.member.id}
    assert len(answered(world, 401)) == 1
    await next_job_works(world)


async def test_an_interaction_too_old_to_answer_leaves_no_job_and_no_charge(world: World) -> None:
    late = await world.command(
        "pika text", {"prompt": "too late"}, created_at=world.clock() - timedelta(seconds=10)
    )
    # The defer, then the refusal: both too late.
    await world.wait_for(lambda: len(world.fake.requests_to("POST", CALLBACK)) == 2 or None)
    assert late.response is None
    assert await world.jobs() == []
    assert await world.ledger() == []
    assert world.fal.counts["submit"] == 0
    await next_job_works(world)


# -- refusals: permissions, a vanished channel, closed DMs --------------------------------------


async def test_a_403_on_the_delivery_sends_the_video_by_dm(world: World) -> None:
    world.fake.fail_next("POST", DELIVERY, 403)
    interaction = await world.command("pika text", {"prompt": "refused in the channel"})
    await delivered_once(world, interaction, DeliveryPath.DM)
    assert next(m for m in dms(world) if m.attachments).content.startswith("Your Pika video")
    await next_job_works(world)


async def test_a_403_on_the_bot_token_route_sends_the_video_by_dm(world: World) -> None:
    interaction, request_id = await outlive_the_token(world, "late and refused")
    world.fake.fail_next("POST", CHANNEL_POST, 403)
    await world.fal.advance(request_id)
    await delivered_once(world, interaction, DeliveryPath.DM)
    await next_job_works(world)


async def test_a_failure_in_a_deleted_channel_is_told_by_dm(world: World) -> None:
    world.fal.script_next(JobScript(hold_in_progress=True, outcome="model_error"))
    interaction = await world.command("pika text", {"prompt": "fails where nobody reads"})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, "IN_PROGRESS")
    await world.fake.delete_channel(world.fake.channel)
    await world.fal.advance(submission.request_id)
    job = await job_of(world, interaction)
    assert job.state is JobState.FAILED
    assert await ledger_kinds(world, job) == ["reserve", "refund"]
    notes = [m for m in dms(world) if job.id in m.content]
    assert len(notes) == 1
    assert NOT_CHARGED in notes[0].content


async def test_with_the_channel_gone_and_dms_closed_a_failure_is_still_refunded(
    world: World,
) -> None:
    world.fal.script_next(JobScript(hold_in_progress=True, outcome="model_error"))
    interaction = await world.command("pika text", {"prompt": "nobody to tell"})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, "IN_PROGRESS")
    await world.fake.delete_channel(world.fake.channel)
    world.fake.close_dms(world.fake.member)
    await world.fal.advance(submission.request_id)
    job = await job_of(world, interaction)
    assert job.state is JobState.FAILED
    assert job.error is not None
    assert NOT_CHARGED in job.error
    assert await ledger_kinds(world, job) == ["reserve", "refund"]
    assert world.bot is not None
    assert world.bot.jobs.at_fal_count == 0
    assert world.bot.jobs.waiting_count == 0
    # The bot keeps working for everyone else.
    other = await world.fake.add_text_channel("other")
    again = await world.command("pika text", {"prompt": "elsewhere"}, channel=other)
    await asyncio.wait_for(world.wait_for(lambda: world.posts(other) or None), 20)
    assert (await job_of(world, again, submission=2)).state is JobState.DELIVERED
