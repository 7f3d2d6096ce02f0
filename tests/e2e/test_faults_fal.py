"""fal misbehaving under the real bot: every fault ends in one delivery or one refund with words
the member can read, never a second submit, and the next job works."""

from __future__ import annotations

import asyncio

import pytest

from bot.emulator import Fault, JobScript
from bot.fal import FalTimeouts
from bot.sandbox.fakediscord.records import FakeInteraction
from bot.store import Job, JobState
from tests.e2e.conftest import World, decodes, embed_text, job_id_of, png

NOT_CHARGED = "You were not charged."
TEXT_ENDPOINT = "fal-ai/pika/v2.5/text-to-video"


async def job_of(world: World, interaction: FakeInteraction) -> Job:
    """The job a command started, once the bot has nothing more to do for it."""
    reply = await world.wait_for(
        lambda: (
            interaction.original if interaction.original and interaction.original.embeds else None
        )
    )
    return await world.job(job_id_of(reply))


async def ledger_kinds(world: World, job: Job) -> list[str]:
    assert world.store is not None
    return [str(entry.kind) for entry in await world.store.ledger.for_job(job.id)]


def submits_of(world: World, prompt: str) -> int:
    """How many submits fal accepted with this prompt (each test job has its own prompt)."""
    return sum(1 for s in world.fal.submissions if s.body.get("prompt") == prompt)


async def delivered_once(world: World, interaction: FakeInteraction) -> Job:
    """The job was posted exactly once, as a real video, and charged exactly once."""
    job = await job_of(world, interaction)
    assert job.state is JobState.DELIVERED, job.error
    posts = [m for m in world.posts() if job_id_of(m) == job.id]
    assert len(posts) == 1
    assert decodes(posts[0].attachments[0].data) > 0
    assert await ledger_kinds(world, job) == ["reserve", "settle"]
    return job


async def refunded(
    world: World,
    interaction: FakeInteraction,
    says: str,
    state: JobState = JobState.FAILED,
    kind: str = "refund",
) -> Job:
    """The job ended without a video, the member was told why in plain words, and refunded
    (kind "write_off" when fal may have billed the run: it still counts against the budgets)."""
    job = await job_of(world, interaction)
    assert job.state is state
    assert job.error is not None
    assert says in job.error
    assert NOT_CHARGED in job.error
    assert interaction.original is not None
    assert says in embed_text(interaction.original), "the progress reply says why"
    notes = [m for m in interaction.followups if says in m.content]
    assert len(notes) == 1
    assert notes[0].ephemeral
    assert not [m for m in world.posts() if job_id_of(m) == job.id]
    assert await ledger_kinds(world, job) == ["reserve", kind]
    return job


async def next_job_works(world: World) -> None:
    """After the fault, with fal healthy again, a new job goes through as usual."""
    world.fal.clear_faults()
    world.fal.default_script = JobScript()
    interaction = await world.command("pika text", {"prompt": "and the next one works"})
    await delivered_once(world, interaction)
    assert submits_of(world, "and the next one works") == 1


async def restart_with(world: World, timeouts: FalTimeouts) -> None:
    """Restart the bot with a fal client that gives up on answers sooner."""
    world.fal_timeouts = timeouts
    await world.stop()
    await world.start()


# -- submit --------------------------------------------------------------------------------


async def test_a_429_with_retry_after_on_submit_is_waited_out_and_sent_once(world: World) -> None:
    world.fal.inject(Fault(kind="submit", status=429, retry_after=0.1, times=2))
    interaction = await world.command("pika text", {"prompt": "rate limited"})
    await delivered_once(world, interaction)
    assert world.fal.counts["submit"] == 3
    assert submits_of(world, "rate limited") == 1
    await next_job_works(world)


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_gateway_error_on_submit_without_a_request_id_is_retried(
    world: World, status: int
) -> None:
    world.fal.inject(Fault(kind="submit", status=status))
    interaction = await world.command("pika text", {"prompt": f"gateway {status}"})
    await delivered_once(world, interaction)
    assert world.fal.counts["submit"] == 2
    assert submits_of(world, f"gateway {status}") == 1
    await next_job_works(world)


@pytest.mark.parametrize(
    ("fault", "says", "state", "kind"),
    [
        # fal's own error after reading the request: it may exist there, so it may bill.
        (
            Fault(kind="submit", status=500),
            "fal had a problem running the video",
            JobState.UNKNOWN,
            "write_off",
        ),
        # fal gave it an id, so the bot watches that id; fal then says it has no such
        # request (the emulator never made it): not running, but it may have billed.
        (
            Fault(kind="submit", status=503, request_id_header=True),
            "fal no longer has this job",
            JobState.FAILED,
            "write_off",
        ),
        (
            Fault(kind="submit", status=401),
            "fal account refused the request",
            JobState.FAILED,
            "refund",
        ),
    ],
    ids=["500", "503-with-request-id", "401"],
)
async def test_a_submit_error_that_may_have_reached_fal_is_not_retried_but_refunded(
    world: World, fault: Fault, says: str, state: JobState, kind: str
) -> None:
    world.fal.inject(fault)
    interaction = await world.command("pika text", {"prompt": "refused at submit"})
    await refunded(world, interaction, says, state, kind)
    assert world.fal.counts["submit"] == 1
    await next_job_works(world)


@pytest.mark.parametrize("after_accept", [False, True], ids=["before-accept", "after-accept"])
async def test_a_connection_reset_on_submit_is_never_resent(
    world: World, after_accept: bool
) -> None:
    world.fal.inject(Fault(kind="submit", reset=True, after_accept=after_accept))
    interaction = await world.command("pika text", {"prompt": "reset while sending"})
    await refunded(
        world, interaction, "cannot tell whether fal received it", JobState.UNKNOWN, "write_off"
    )
    assert world.fal.counts["submit"] == 1
    assert submits_of(world, "reset while sending") == (1 if after_accept else 0)
    await next_job_works(world)


async def test_a_submit_answered_after_the_read_timeout_is_never_resent(world: World) -> None:
    await restart_with(
        world, FalTimeouts(connect=2, read=0.3, write=2, pool=2, stream_read=2, upload=5)
    )
    world.fal.inject(Fault(kind="submit", delay=1.0, after_accept=True))
    interaction = await world.command("pika text", {"prompt": "slow to answer"})
    await refunded(
        world, interaction, "cannot tell whether fal received it", JobState.UNKNOWN, "write_off"
    )
    assert world.fal.counts["submit"] == 1
    assert submits_of(world, "slow to answer") == 1
    await next_job_works(world)


# -- following the job and fetching the result ----------------------------------------------


# 502 and 504 take the same path as 503 once a job is at fal (the submit tests tell them apart).
@pytest.mark.parametrize("status", [429, 500, 503])
@pytest.mark.parametrize("kind", ["stream", "status", "result", "file"])
async def test_a_transient_error_after_submit_is_retried_and_delivered_once(
    world: World, kind: str, status: int
) -> None:
    if kind == "status":
        # Polling only starts once the status stream is unusable.
        world.fal.inject(Fault(kind="stream", status=404))
    world.fal.inject(Fault(kind=kind, status=status, retry_after=0.05, times=2))
    prompt = f"{kind} answers {status}"
    interaction = await world.command("pika text", {"prompt": prompt})
    await delivered_once(world, interaction)
    assert world.fal.counts[kind] >= 3, "two failed tries, then the one that worked"
    assert submits_of(world, prompt) == 1
    await next_job_works(world)


@pytest.mark.parametrize("kind", ["stream", "status", "result", "file"])
async def test_a_connection_reset_after_submit_is_retried_and_delivered_once(
    world: World, kind: str
) -> None:
    if kind == "status":
        world.fal.inject(Fault(kind="stream", status=404))
    world.fal.inject(Fault(kind=kind, reset=True, times=2))
    prompt = f"{kind} resets"
    interaction = await world.command("pika text", {"prompt": prompt})
    await delivered_once(world, interaction)
    assert submits_of(world, prompt) == 1
    await next_job_works(world)


@pytest.mark.parametrize("kind", ["stream", "status", "result"])
async def test_an_answer_slower_than_the_timeout_is_retried_and_delivered_once(
    world: World, kind: str
) -> None:
    await restart_with(
        world, FalTimeouts(connect=2, read=0.3, write=2, pool=2, stream_read=0.5, upload=5)
    )
    world.fal.keepalive_seconds = 0.1  # keep-alives well inside the short stream timeout
    if kind == "status":
        world.fal.inject(Fault(kind="stream", status=404))
    world.fal.inject(Fault(kind=kind, delay=1.0))
    prompt = f"{kind} is slow"
    interaction = await world.command("pika text", {"prompt": prompt})
    await delivered_once(world, interaction)
    assert world.fal.counts[kind] >= 2
    assert submits_of(world, prompt) == 1
    await next_job_works(world)


async def test_a_status_stream_that_keeps_breaking_falls_back_to_polling(world: World) -> None:
    world.fal.keepalive_seconds = 0.05
    world.fal.script_next(JobScript(stream_break_after=1, hold_in_progress=True))
    interaction = await world.command("pika text", {"prompt": "the stream breaks"})
    submission = await world.submission()
    async with asyncio.timeout(20):
        await world.fal.wait_for_status(submission.request_id, "IN_PROGRESS")
        # Three streams, each broken after its first event; then the bot polls.
        await world.fal.wait_for_requests("status", 1)
    await world.fal.advance(submission.request_id)
    await delivered_once(world, interaction)
    assert world.fal.counts["stream"] == 3
    assert submits_of(world, "the stream breaks") == 1
    await next_job_works(world)


async def test_a_result_that_expired_is_refunded_with_the_reason(world: World) -> None:
    world.fal.script_next(JobScript(hold_in_progress=True))
    interaction = await world.command("pika text", {"prompt": "too late to fetch"})
    submission = await world.submission()
    await world.fal.wait_for_status(submission.request_id, "IN_PROGRESS")
    world.fal.expire(submission.request_id)
    await world.fal.advance(submission.request_id)
    await refunded(world, interaction, "results expire", kind="write_off")
    assert submits_of(world, "too late to fetch") == 1
    await next_job_works(world)


async def test_a_model_that_fal_retired_switches_its_mode_off_and_the_rest_keep_working(
    world: World,
) -> None:
    world.fal.remove_endpoint(TEXT_ENDPOINT)
    first = await world.command("pika text", {"prompt": "a retired model"})
    await refunded(world, first, "not available at fal any more")
    assert world.fal.counts["submit"] == 1

    # From now on the mode refuses up front: only the member sees it, and nothing is charged.
    ledger_before = await world.ledger()
    second = await world.command("pika text", {"prompt": "still retired"})
    refusal = await world.refusal(second)
    assert refusal.before_defer
    assert TEXT_ENDPOINT in refusal.text
    assert "switched off" in refusal.text
    assert await world.ledger() == ledger_before
    assert world.fal.counts["submit"] == 1
    assert len(await world.jobs()) == 1

    # Other endpoints are untouched, the same mode with another model included.
    other = await world.command("pika text", {"prompt": "an older model", "model": "v2.2"})
    await delivered_once(world, other)
    assert world.fal.submissions[-1].endpoint_id == "fal-ai/pika/v2.2/text-to-video"
    image = world.attach(png(320, 320), "cake.png")
    effect = await world.command("pika effect", {"image": image, "effect": "Melt"})
    await delivered_once(world, effect)
    assert world.fal.submissions[-1].endpoint_id == "fal-ai/pika/v1.5/pikaffects"
