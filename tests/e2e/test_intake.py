"""Commands on their way in: they count toward the member's job limit before anything is
downloaded, and attachments come only from Discord's CDN, bounded while streaming."""

from __future__ import annotations

from typing import Any

from bot.emulator import JobScript
from tests.e2e.conftest import World, job_id_of, png

CALLBACK = "/interactions/*/callback"


def scenes(world: World, count: int = 6) -> dict[str, Any]:
    """A /pika scenes command with `count` images."""
    images = {f"image{n}": world.attach(png(320, 320), f"i{n}.png") for n in range(1, count + 1)}
    return {**images, "prompt": "a picnic"}


async def test_a_command_still_in_intake_counts_toward_the_job_limit(world: World) -> None:
    fake = world.fake
    assert world.settings.max_jobs_per_member == 2
    world.fal.script_next(JobScript(hold_in_progress=True), JobScript(hold_in_progress=True))
    # Two commands are past their checks and acknowledging: neither is a job yet.
    holds = [fake.hold_next("POST", CALLBACK), fake.hold_next("POST", CALLBACK)]
    first = await world.command("pika scenes", scenes(world))
    await holds[0].wait()
    second = await world.command("pika scenes", scenes(world))
    await holds[1].wait()
    assert await world.jobs() == []

    third_options = scenes(world)
    third = await world.command("pika scenes", third_options)
    refused = await world.refusal(third)
    assert refused.before_defer
    assert "2 unfinished jobs" in refused.text
    assert "at most 2" in refused.text
    # Refused before download, costing nothing.
    assert all(fake.downloads(third_options[f"image{n}"]) == 0 for n in range(1, 7))

    for hold in holds:
        hold.release()
    await world.submission(2)
    assert first.deferred
    assert second.deferred
    assert len(await world.jobs()) == 2
    assert len(world.fal.submissions) == 2


async def test_an_attachment_off_discords_cdn_is_refused_without_a_download(
    world: World,
) -> None:
    image = world.attach(png(320, 320), "cat.png")
    # The same file, named by a host that is not one of Discord's CDN hosts.
    image["url"] = str(image["url"]).replace("127.0.0.1", "localhost", 1)
    interaction = await world.command("pika animate", {"image": image, "prompt": "a cat"})
    refusal = await world.refusal(interaction)
    assert not refusal.before_defer
    assert "does not download from localhost" in refusal.text
    assert "Nothing was charged" in refusal.text
    assert world.fake.downloads(image) == 0
    assert await world.jobs() == []
    assert world.fal.counts["submit"] == 0


async def test_an_attachment_larger_than_declared_is_cut_off_while_streaming(
    world: World,
) -> None:
    # Discord says 300 KiB; the CDN serves 21 MiB (over the 20 MiB image limit).
    image = world.attach(png(320, 320) + bytes(21 * 1024 * 1024), "huge.png")
    image["size"] = 300 * 1024
    interaction = await world.command("pika animate", {"image": image, "prompt": "a cat"})
    refusal = await world.refusal(interaction)
    assert not refusal.before_defer
    assert refusal.text == "image is more than 20 MiB; images may be at most 20 MiB."
    assert await world.jobs() == []
    assert world.fal.counts["submit"] == 0


async def test_a_command_after_one_refused_in_intake_runs(world: World) -> None:
    # The refused command's place in intake is given back: the member's next command runs.
    image = world.attach(png(320, 320), "cat.png")
    image["url"] = str(image["url"]).replace("127.0.0.1", "localhost", 1)
    await world.refusal(await world.command("pika animate", {"image": image, "prompt": "x"}))
    assert world.bot is not None
    assert world.bot.intake.pending(world.fake.member.id) == 0
    await world.command("pika animate", {"image": world.attach(png(), "ok.png"), "prompt": "y"})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    assert (await world.job(job_id_of(post))).state == "delivered"
