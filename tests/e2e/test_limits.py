"""Acknowledging in time, and the limit on a member's unfinished jobs."""

from __future__ import annotations

from bot.emulator import JobScript
from bot.store import LedgerKind
from tests.e2e.conftest import World, job_id_of, png


async def test_the_command_is_deferred_before_its_files_are_downloaded(world: World) -> None:
    fake = world.fake
    image = world.attach(png(1024, 1024) + bytes(3 * 1024 * 1024), "big.png")
    interaction = await world.command("pika animate", {"image": image, "prompt": "wind"})
    await world.wait_for(lambda: (world.posts() or [None])[0])
    callback = next(
        n for n, r in enumerate(fake.requests) if r.path.endswith(f"{interaction.token}/callback")
    )
    download = next(n for n, r in enumerate(fake.requests) if not r.api and r.status == 200)
    assert callback < download
    # The fake refuses a callback later than 3 s after the interaction: it was accepted.
    assert interaction.response is not None
    assert interaction.response.type == 5
    assert not interaction.response.ephemeral


async def test_a_command_over_the_unfinished_job_limit_is_refused_clearly(world: World) -> None:
    fal = world.fal
    assert world.settings.max_jobs_per_member == 2
    fal.script_next(JobScript(hold_in_progress=True), JobScript(hold_in_progress=True))
    await world.command("pika text", {"prompt": "one", "seed": 1})
    await world.command("pika text", {"prompt": "two", "seed": 2})
    first, second = await world.submission(1), await world.submission(2)

    third = await world.command("pika text", {"prompt": "three", "seed": 3})
    refused = await world.refusal(third)
    assert "2 unfinished jobs" in refused.text
    assert "at most 2" in refused.text
    assert refused.before_defer
    assert len(fal.submissions) == 2
    kinds = [e.kind for e in await world.ledger()]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.RESERVE]

    # Once one of them is done, the member may start another.
    await fal.advance(first.request_id)
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    await world.job(job_id_of(post))
    fourth = await world.command("pika text", {"prompt": "four", "seed": 4})
    assert (await world.submission(3)).body["prompt"] == "four"
    assert fourth.deferred
    await fal.advance(second.request_id)
    await world.wait_for(lambda: len(world.posts()) == 3)
