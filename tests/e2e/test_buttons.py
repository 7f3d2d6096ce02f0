"""Result buttons: Re-roll, Remix, Continue, Details, Delete, Cancel; also after a restart."""

from __future__ import annotations

from typing import Any

import discord

from bot.emulator import JobScript
from bot.sandbox.fakediscord.records import StoredMessage
from tests.e2e.conftest import World, job_id_of, png


def buttons(message: StoredMessage) -> list[str]:
    return [
        c["custom_id"]
        for row in message.components
        for c in row.get("components", [])
        if c.get("type") == 2
    ]


def ephemeral_text(interaction: Any) -> str:
    """What the member alone was told in answer to an interaction (reply or followup)."""
    texts = []
    for response in interaction.responses:
        data = response.data or {}
        if data.get("flags", 0) & 64:
            texts.append(data.get("content") or "")
            texts += [e.get("description") or e.get("title") or "" for e in data.get("embeds", [])]
    for message in interaction.followups:
        if message.flags & 64:
            texts.append(message.content)
    return "\n".join(texts)


async def answered(world: World, click: Any) -> Any:
    """The callback that acknowledged an interaction."""
    done = await world.fake.wait_for_response(click)
    assert done.response is not None
    return done.response


async def first_video(world: World, prompt: str = "a lighthouse at dusk") -> StoredMessage:
    await world.command("pika text", {"prompt": prompt})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    await world.job(job_id_of(post))
    return post


async def nth_post(world: World, n: int) -> StoredMessage:
    post = await world.wait_for(lambda: world.posts()[n] if len(world.posts()) > n else None)
    await world.job(job_id_of(post))
    return post


async def test_a_result_carries_all_five_buttons(world: World) -> None:
    post = await first_video(world)
    job_id = job_id_of(post)
    assert buttons(post) == [
        f"pika:{action}:{job_id}" for action in ("reroll", "remix", "continue", "details", "delete")
    ]


async def test_reroll_makes_a_new_charged_job_with_the_same_inputs_and_a_new_seed(
    world: World,
) -> None:
    post = await first_video(world)
    parent = await world.job(job_id_of(post))
    await world.fake.click(world.fake.member, post, f"pika:reroll:{parent.id}")
    second = await nth_post(world, 1)
    child = await world.job(job_id_of(second))
    assert child.parent_job_id == parent.id
    assert child.state == "delivered"
    assert child.request["prompt"] == parent.request["prompt"]
    assert child.request["seed"] != parent.request["seed"]
    bodies = [s.body for s in world.fal.submissions]
    assert len(bodies) == 2
    assert bodies[1]["seed"] == child.request["seed"]
    assert world.store is not None
    assert [e.kind for e in await world.store.ledger.for_job(child.id)] == ["reserve", "settle"]


async def test_remix_opens_a_modal_and_runs_the_edited_prompt(world: World) -> None:
    post = await first_video(world)
    job_id = job_id_of(post)
    click = await world.fake.click(world.fake.member, post, f"pika:remix:{job_id}")
    modal = await world.wait_for(lambda: click.modal)
    assert modal["custom_id"] == f"pika:remixmodal:{job_id}"
    await world.fake.submit_modal(
        world.fake.member,
        click,
        values={"prompt": "a lighthouse in a storm", "negative_prompt": "blurry"},
    )
    second = await nth_post(world, 1)
    child = await world.job(job_id_of(second))
    assert child.request["prompt"] == "a lighthouse in a storm"
    assert world.fal.submissions[1].body["negative_prompt"] == "blurry"
    assert world.fal.submissions[1].body["seed"] == world.fal.submissions[0].body["seed"]


async def test_continue_animates_the_last_frame_with_the_same_prompt(world: World) -> None:
    post = await first_video(world)
    job_id = job_id_of(post)
    await world.fake.click(world.fake.member, post, f"pika:continue:{job_id}")
    second = await nth_post(world, 1)
    child = await world.job(job_id_of(second))
    assert child.mode == "animate"
    submission = world.fal.submissions[1]
    assert submission.endpoint_id == "fal-ai/pika/v2.2/image-to-video"
    assert submission.body["prompt"] == "a lighthouse at dusk"
    assert submission.body["image_url"].startswith("data:image/png;base64,")


async def test_details_answers_only_the_clicker_with_every_parameter(world: World) -> None:
    post = await first_video(world)
    job_id = job_id_of(post)
    click = await world.fake.click(world.fake.member, post, f"pika:details:{job_id}")
    response = await answered(world, click)
    assert response.data["flags"] & 64
    embed = response.data["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    job = await world.job(job_id)
    assert fields["Seed"] == str(job.request["seed"])
    assert fields["Resolution"] == "720p (fal's default)"
    assert fields["Cost"] == f"{job.cost} credits"
    assert job.fal_request_id in fields["fal request"]
    assert "Timings" in fields


async def test_others_are_told_it_is_not_their_job(world: World) -> None:
    post = await first_video(world)
    job_id = job_id_of(post)
    stranger = await world.fake.add_member("bob")
    for action in ("reroll", "remix", "continue", "details", "delete"):
        click = await world.fake.click(stranger, post, f"pika:{action}:{job_id}")
        response = await answered(world, click)
        assert response.data["flags"] & 64
        assert "not your job" in response.data["content"]
    assert len(world.fal.submissions) == 1
    assert not world.fake.message(post.id).deleted


async def test_delete_by_the_requester_and_by_a_moderator(world: World) -> None:
    post = await first_video(world)
    await world.fake.click(world.fake.member, post, f"pika:delete:{job_id_of(post)}")
    await world.wait_for(lambda: world.fake.message(post.id).deleted)

    await world.command("pika text", {"prompt": "second"})
    second = await world.wait_for(lambda: (world.posts() or [None])[0])
    await world.job(job_id_of(second))
    moderator = await world.fake.add_member(
        "mod", permissions=discord.Permissions(manage_messages=True).value
    )
    await world.fake.click(moderator, second, f"pika:delete:{job_id_of(second)}")
    await world.wait_for(lambda: world.fake.message(second.id).deleted)


async def test_cancel_on_a_queued_job_refunds_it(world: World) -> None:
    world.fal.default_script = JobScript(hold_in_queue=True)
    interaction = await world.command("pika text", {"prompt": "held at fal"})
    progress = await world.wait_for(
        lambda: (
            interaction.original
            if interaction.original and interaction.original.components
            else None
        )
    )
    custom_id = buttons(progress)[0]
    assert custom_id.startswith("pika:cancel:")
    job_id = custom_id.rsplit(":", 1)[1]
    await world.wait_for(lambda: world.fal.submissions or None)
    click = await world.fake.click(world.fake.member, progress, custom_id)
    assert (await answered(world, click)).type == 5  # deferred: fal's answer may take a while
    await world.wait_for(lambda: "Asked fal to stop" in ephemeral_text(click) or None)
    job = await world.job(job_id)
    assert job.state == "cancelled"
    assert world.store is not None
    assert [e.kind for e in await world.store.ledger.for_job(job_id)] == ["reserve", "refund"]
    assert world.fal.counts["cancel"] == 1


async def test_buttons_work_after_a_restart(world: World) -> None:
    post = await first_video(world)
    job_id = job_id_of(post)
    await world.stop()
    await world.start()
    click = await world.fake.click(world.fake.member, post, f"pika:details:{job_id}")
    response = await answered(world, click)
    assert response.data["embeds"][0]["title"] == f"Pika job {job_id}"
    await world.fake.click(world.fake.member, post, f"pika:reroll:{job_id}")
    second = await nth_post(world, 1)
    assert (await world.job(job_id_of(second))).parent_job_id == job_id
    remix = await world.fake.click(world.fake.member, post, f"pika:remix:{job_id}")
    await world.wait_for(lambda: remix.modal)
    await world.fake.submit_modal(world.fake.member, remix, values={"prompt": "after a restart"})
    third = await nth_post(world, 2)
    assert (await world.job(job_id_of(third))).request["prompt"] == "after a restart"
    await world.fake.click(world.fake.member, post, f"pika:continue:{job_id}")
    fourth = await nth_post(world, 3)
    assert (await world.job(job_id_of(fourth))).mode == "animate"
    await world.fake.click(world.fake.member, post, f"pika:delete:{job_id}")
    await world.wait_for(lambda: world.fake.message(post.id).deleted)


async def test_cancel_works_after_a_restart(world: World) -> None:
    world.fal.default_script = JobScript(hold_in_queue=True)
    interaction = await world.command("pika text", {"prompt": "held across a restart"})
    progress = await world.wait_for(
        lambda: (
            interaction.original
            if interaction.original and interaction.original.components
            else None
        )
    )
    custom_id = buttons(progress)[0]
    job_id = custom_id.rsplit(":", 1)[1]
    await world.wait_for(lambda: world.fal.submissions or None)
    await world.stop()
    await world.start()
    click = await world.fake.click(world.fake.member, progress, custom_id)
    assert (await answered(world, click)).type == 5  # deferred: fal's answer may take a while
    await world.wait_for(lambda: "Asked fal to stop" in ephemeral_text(click) or None)
    job = await world.job(job_id)
    assert job.state == "cancelled"
    assert world.store is not None
    assert [e.kind for e in await world.store.ledger.for_job(job_id)] == ["reserve", "refund"]


async def test_reroll_after_the_inputs_left_the_cache_is_refused_clearly(world: World) -> None:
    image = world.attach(png(), "cat.png", "image/png", width=512, height=512)
    await world.command("pika animate", {"image": image, "prompt": "the cat blinks"})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    job = await world.job(job_id_of(post))
    assert world.bot is not None
    for sha in job.input_hashes:
        world.bot.cache.path(sha).unlink()
    click = await world.fake.click(world.fake.member, post, f"pika:reroll:{job.id}")
    await world.wait_for(lambda: ephemeral_text(click) or None)
    assert "no longer kept" in ephemeral_text(click)
    assert len(world.fal.submissions) == 1


async def test_a_remix_modal_submitted_by_another_member_is_refused(world: World) -> None:
    post = await first_video(world)
    job_id = job_id_of(post)
    click = await world.fake.click(world.fake.member, post, f"pika:remix:{job_id}")
    await world.wait_for(lambda: click.modal)
    stranger = await world.fake.add_member("bob")
    submit = await world.fake.submit_modal(stranger, click, values={"prompt": "bob's idea"})
    response = await answered(world, submit)
    assert response.type == 4
    assert response.ephemeral
    assert "not your job" in response.data["content"]
    assert len(world.fal.submissions) == 1
    assert world.store is not None
    assert await world.store.jobs.recent(stranger.id, limit=10) == []


async def test_reroll_of_a_job_past_the_retention_bound_says_so(world: World) -> None:
    post = await first_video(world)
    job = await world.job(job_id_of(post))
    assert world.store is not None
    # Retention clears a long-finished job's request (PIKABOT_JOB_RETENTION_DAYS).
    await world.store.meta.expire_jobs(job.updated_at + 1)
    click = await world.fake.click(world.fake.member, post, f"pika:reroll:{job.id}")
    await world.wait_for(lambda: ephemeral_text(click) or None)
    assert "older than the bot keeps" in ephemeral_text(click)
    assert len(world.fal.submissions) == 1
