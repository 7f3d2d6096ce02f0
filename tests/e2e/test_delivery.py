"""Delivery after the interaction token died, and prompts that try to ping people."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.emulator import JobScript
from bot.sandbox.fakediscord.records import StoredMessage
from tests.e2e.conftest import World, embed_text, job_id_of


def webhook_calls(world: World, token: str, since: int = 0) -> list[str]:
    """Requests made with an interaction's token (its webhook routes), from `since` on."""
    return [str(r) for r in world.fake.requests[since:] if token in r.path]


@pytest.mark.parametrize(
    "age", [timedelta(minutes=14, seconds=50), timedelta(minutes=20)], ids=["14m50s", "20m"]
)
async def test_a_job_outliving_its_token_is_edited_and_posted_with_the_bot_token(
    world: World, age: timedelta
) -> None:
    fake = world.fake
    world.fal.script_next(JobScript(hold_in_progress=True))
    interaction = await world.command("pika text", {"prompt": "a slow sunrise", "seed": 6})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, "IN_PROGRESS")
    progress = interaction.original
    assert progress is not None

    # The command is now `age` old for the fake Discord, discord.py and the bot alike.
    world.clock.advance(age - (world.clock() - interaction.created_at))
    since = len(fake.requests)
    edit_path = f"*/channels/{fake.channel.id}/messages/{progress.id}"

    # Progress edits go on, through the channel with the bot token.
    def bot_edits() -> list[object]:
        return [r for r in fake.requests_to("PATCH", edit_path)[-5:] if r.bot_auth]

    await world.wait_for(
        lambda: any(r.at > world.clock() - timedelta(seconds=30) for r in bot_edits())
    )
    await world.fal.advance(submission.request_id)
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    job = await world.job(job_id_of(post))

    assert job.state == "delivered"
    assert post.via == "bot"
    creates = fake.requests_to("POST", f"*/channels/{fake.channel.id}/messages")
    assert [r.bot_auth for r in creates] == [True]
    assert post.pings.users == {fake.member.id}
    # The progress reply says where the video went, edited with the bot token as well.
    assert "Done" in embed_text(fake.message(progress.id))
    assert webhook_calls(world, interaction.token, since) == []
    assert [str(r) for r in fake.requests if r.status == 401] == []


def every_ping(messages: list[StoredMessage]) -> tuple[set[int], set[int], bool]:
    users: set[int] = set()
    roles: set[int] = set()
    everyone = False
    for message in messages:
        users |= message.pings.users
        roles |= message.pings.roles
        everyone |= message.pings.everyone
    return users, roles, everyone


async def test_a_prompt_full_of_mentions_pings_only_the_requester(world: World) -> None:
    fake = world.fake
    role = await fake.add_role("moderators", 0)
    other = await fake.add_member("bob")
    prompt = f"@everyone @here <@&{role.id}> <@{other.id}> <@!{other.id}> hi"
    await world.command("pika text", {"prompt": prompt, "seed": 1})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    await world.job(job_id_of(post))

    # And a job that fails: its explanation echoes nothing dangerous either.
    world.fal.script_next(JobScript(outcome="model_error", error_message=f"bad {prompt}"))
    await world.command("pika text", {"prompt": prompt, "negative_prompt": prompt, "seed": 2})
    submission = await world.submission(2)
    jobs = await world.jobs()
    failed = next(j for j in jobs if j.seed == 2)
    failed = await world.job(failed.id)
    assert failed.state == "failed"
    assert submission.body["prompt"] == prompt  # the prompt itself goes to fal unchanged

    messages = world.bot_messages()
    assert len(messages) >= 3
    users, roles, everyone = every_ping(messages)
    assert users == {fake.member.id}
    assert roles == set()
    assert not everyone
    # Every message that carries the member's text says who may be pinged.
    for message in messages:
        if "@" in message.content:
            assert message.allowed_mentions is not None, message.content
