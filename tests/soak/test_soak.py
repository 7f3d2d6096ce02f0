"""200 jobs from 20 members while fal and Discord fail about 15% of requests at random: every job
ends delivered once or refunded with a reason, the ledger explains every balance, none is stuck."""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from dataclasses import dataclass, field

import pytest

from bot.emulator import Fault, JobScript, PreviewSettings
from bot.fal import FalTimeouts
from bot.sandbox.fakediscord import RandomFault, User
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from bot.store import DeliveryPath, Job, JobState, LedgerKind
from tests.e2e.conftest import World, job_id_of, png

pytestmark = pytest.mark.soak

SEED = 20240611
MEMBERS = 20
JOBS_EACH = 10
FAULT_RATE = 0.15
ALLOWANCE = 100_000
NOT_CHARGED = "You were not charged."

# Past the client's 0.5 s read timeout: the answer comes too late to be read.
SLOW = 1.0
FAL_FAULTS = [
    # Submits: waited out (429 and gateway errors without a request id), refused (500), or
    # unknowable (a reset or a late answer after fal took the job): never sent twice.
    Fault(kind="submit", status=429, retry_after=0.05),
    Fault(kind="submit", status=502),
    Fault(kind="submit", status=503),
    Fault(kind="submit", status=504),
    Fault(kind="submit", status=500),
    Fault(kind="submit", reset=True),
    Fault(kind="submit", reset=True, after_accept=True),
    Fault(kind="submit", delay=SLOW, after_accept=True),
    # Following the job: every failure is retried or waited out.
    *(Fault(kind="stream", status=status) for status in (429, 500, 503)),
    Fault(kind="stream", reset=True),
    Fault(kind="stream", delay=SLOW * 2),
    *(Fault(kind="status", status=status) for status in (429, 500, 502, 503, 504)),
    Fault(kind="status", reset=True),
    Fault(kind="status", delay=SLOW),
    *(Fault(kind="result", status=status) for status in (429, 500, 503)),
    Fault(kind="result", reset=True),
    Fault(kind="result", delay=SLOW),
    Fault(kind="result", status=404),  # the result expired
    Fault(kind="file", status=503),
    Fault(kind="file", reset=True),
    # Uploads of inputs to fal's storage.
    Fault(kind="token", status=503),
    Fault(kind="upload", status=502),
    Fault(kind="upload", reset=True),
]

API = re.compile(r"/(?!attachments/|ephemeral-attachments/).*")  # every REST route, not the CDN
DISCORD_FAULTS = [
    RandomFault("*", API, 429, retry_after=0.05, global_=True),
    RandomFault("POST", "/interactions/*/callback", 429, retry_after=0.05),
    RandomFault("PATCH", "/webhooks/*/messages/@original", 429, retry_after=0.05),
    RandomFault("PATCH", "/webhooks/*/messages/@original", 503),
    RandomFault("POST", "/webhooks/*", 429, retry_after=0.05),
    RandomFault("POST", "/webhooks/*", 503),
    RandomFault("POST", "/webhooks/*", 401, code=50027, message="Invalid Webhook Token"),
    RandomFault("POST", "/webhooks/*", 403),
    RandomFault("POST", "/channels/*/messages", 429, retry_after=0.05),
    RandomFault("POST", "/channels/*/messages", 429, retry_after=0.05, via=False),
    RandomFault("POST", "/channels/*/messages", 500),
    RandomFault("POST", "/channels/*/messages", 503),
    RandomFault("POST", "/channels/*/messages", 403),
    RandomFault("PATCH", "/channels/*/messages/*", 503),
    RandomFault("GET", "/channels/*/messages", 503),
    RandomFault("POST", "/users/@me/channels", 503),
    RandomFault("GET", "/users/*", 503),
    RandomFault("GET", "/ephemeral-attachments/*", 503),  # a command's attachments
]

SCRIPTS = [
    (JobScript(run_seconds=0.02), 80),
    (JobScript(run_seconds=0.02, stream_break_after=1), 8),
    (JobScript(run_seconds=0.02, outcome="model_error"), 6),
    (JobScript(run_seconds=0.02, outcome="platform_error"), 6),
]


@dataclass
class Member:
    user: User
    jobs: list[str] = field(default_factory=list)
    refused: list[FakeInteraction] = field(default_factory=list)


def refused(interaction: FakeInteraction) -> bool:
    """The member was told no (before the defer, or after it: the deferred reply deleted)."""
    response = interaction.response
    if response is None:
        return False
    if response.type == 4:
        return True
    return interaction.original is not None and interaction.original.deleted


async def play(
    world: World, member: Member, accepted: dict[int, Job], rng: random.Random, start: int
) -> None:
    """One member's evening: a command, its answer, the next, until JOBS_EACH jobs run."""
    number = start
    while len(member.jobs) < JOBS_EACH:
        number += 1
        # A unique prompt per command: fal's submissions map back to their job by it.
        prompt = f"soak {member.user.id} #{number}"
        if rng.random() < 0.25:
            options = {"image": world.attach(png(320, 320, "teal"), "in.png"), "prompt": prompt}
            interaction = await world.command("pika animate", options, user=member.user)
        else:
            interaction = await world.command("pika text", {"prompt": prompt}, user=member.user)

        def answered(i: FakeInteraction = interaction) -> bool:
            return i.id in accepted or refused(i)

        await world.wait_for(answered, timeout=60)
        if interaction.id in accepted:
            member.jobs.append(accepted[interaction.id].id)
        else:
            member.refused.append(interaction)
        assert len(member.refused) <= JOBS_EACH, "far more refusals than faults explain"


def delivered_messages(world: World, job: Job) -> list[StoredMessage]:
    """Messages carrying the job's video or its link: in its channel or the member's DMs."""
    dm = world.fake.world.dm_channel(job.user_id)
    found = []
    for message in world.fake.messages(world.fake.channel) + world.fake.messages(dm):
        if message.deleted or not message.embeds or message.author_id != world.fake.bot_user.id:
            continue
        if message.embeds[0].get("footer", {}).get("text") != f"job {job.id}":
            continue
        if message.attachments or "Video" in {f["name"] for f in message.embeds[0]["fields"]}:
            found.append(message)
    return found


@pytest.mark.world(
    fal_concurrency=8,
    max_jobs_per_member=JOBS_EACH + 5,
    daily_allowance=ALLOWANCE,
    guild_daily_budget=10**7,
    global_daily_budget=10**7,
    data_uri_max_bytes=1024,  # every image goes through fal's storage upload
)
async def test_200_jobs_through_random_faults_are_all_accounted_for(world: World) -> None:
    rng = random.Random(SEED)
    world.fal_timeouts = FalTimeouts(
        connect=2, read=0.5, write=2, pool=5, stream_read=1.0, upload=5
    )
    await world.stop()
    await world.start()
    bot, store = world.bot, world.store
    assert bot is not None
    assert store is not None

    world.fal.preview = PreviewSettings(short_side=64, fps=4, seconds=0.5)
    world.fal.keepalive_seconds = 0.2
    scripts, weights = zip(*SCRIPTS, strict=True)
    world.fal.script_next(*rng.choices(scripts, weights, k=MEMBERS * JOBS_EACH * 2))

    # Watch the bot accept jobs (it answers the member right after): no behaviour changes.
    accepted: dict[int, Job] = {}
    accept = bot.jobs.accept

    async def watched_accept(*args: object, **kwargs: object) -> object:
        result = await accept(*args, **kwargs)  # type: ignore[arg-type]
        if result.job.interaction_id is not None:
            accepted[result.job.interaction_id] = result.job
        return result

    bot.jobs.accept = watched_accept  # type: ignore[method-assign]

    members = [Member(await world.fake.add_member(f"member{n}")) for n in range(MEMBERS)]
    world.fal.fail_randomly(FAULT_RATE, FAL_FAULTS, seed=SEED)
    world.fake.fail_randomly(FAULT_RATE, DISCORD_FAULTS, seed=SEED + 1)
    async with asyncio.timeout(120):
        await asyncio.gather(
            *(
                play(world, m, accepted, random.Random(SEED + n), n * 1000)
                for n, m in enumerate(members)
            )
        )
        ended = await asyncio.gather(
            *(bot.jobs.wait_ended(job_id) for m in members for job_id in m.jobs)
        )
    world.fake.fail_randomly(0.0, (), seed=0)

    # Faults really happened, on both sides.
    discord_errors = Counter(r.status for r in world.fake.requests if r.status >= 400)
    assert sum(world.fal.faulted.values()) >= MEMBERS * JOBS_EACH // 2, world.fal.faulted
    assert sum(discord_errors.values()) >= MEMBERS * JOBS_EACH // 2, discord_errors

    # Every job ended, with exactly one settle, refund or write-off, and a reason when it failed.
    jobs = [job for job in ended if job is not None]
    assert len(jobs) == MEMBERS * JOBS_EACH
    assert len({job.id for job in jobs}) == len(jobs)
    states = Counter(job.state for job in jobs)
    assert states[JobState.DELIVERED] >= len(jobs) // 2, states
    for job in jobs:
        assert job.terminal, f"job {job.id} is stuck in {job.state}"
        kinds = [entry.kind for entry in await store.ledger.for_job(job.id)]
        if job.state is JobState.DELIVERED:
            assert kinds == [LedgerKind.RESERVE, LedgerKind.SETTLE], (job.id, kinds)
            shown = delivered_messages(world, job)
            assert len(shown) == (0 if job.delivery_path == DeliveryPath.KEPT else 1), (
                job.id,
                job.delivery_path,
                [m.id for m in shown],
            )
        else:
            # A write-off is a refund to the member of a run fal may have billed.
            assert kinds in (
                [LedgerKind.RESERVE, LedgerKind.REFUND],
                [LedgerKind.RESERVE, LedgerKind.WRITE_OFF],
            ), (job.id, kinds)
            assert job.error is not None
            assert NOT_CHARGED in job.error, (job.id, job.error)
            assert not delivered_messages(world, job)

    # No job went to fal twice; every job at fal is the one submission with its prompt.
    prompts = Counter(str(s.body.get("prompt")) for s in world.fal.submissions)
    assert max(prompts.values()) == 1, prompts.most_common(3)
    for job in jobs:
        if job.fal_request_id is not None:
            [submission] = [s for s in world.fal.submissions if s.request_id == job.fal_request_id]
            assert submission.body.get("prompt") == job.request.get("prompt")

    # The ledger explains every balance: charged = delivered, nothing still held.
    for member in members:
        rows = await store.ledger.for_member(world.fake.guild.id, member.user.id)
        total = Counter[LedgerKind]()
        for row in rows:
            total[row.kind] += row.amount
        mine = [job for job in jobs if job.user_id == member.user.id]
        charged = sum(job.cost for job in mine if job.state is JobState.DELIVERED)
        assert total[LedgerKind.SETTLE] == charged
        given_back = total[LedgerKind.REFUND] + total[LedgerKind.WRITE_OFF]
        assert total[LedgerKind.RESERVE] == total[LedgerKind.SETTLE] + given_back
        balance = await store.ledger.balance(
            world.fake.guild.id,
            member.user.id,
            period=bot.jobs.accounts.period(),
            allowance=ALLOWANCE,
        )
        assert balance.reserved == 0
        assert balance.used == charged
        assert balance.left == ALLOWANCE - charged
        # A refused command cost nothing and made no job.
        for interaction in member.refused:
            assert interaction.id not in accepted

    # Nothing is left in the bot's queue or at fal.
    assert bot.jobs.waiting_count == 0
    assert bot.jobs.at_fal_count == 0
    assert await store.jobs.unfinished() == []

    # And with the faults (and the scripted failures) gone, the bot works as before.
    world.fal.reset()
    await world.command("pika text", {"prompt": "after the storm"})
    post = await world.wait_for(
        lambda: next(
            (
                m
                for m in world.posts()
                if m.attachments and "after the storm" in m.embeds[0].get("description", "")
            ),
            None,
        )
    )
    assert (await world.job(job_id_of(post))).state is JobState.DELIVERED
