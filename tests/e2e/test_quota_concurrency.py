"""Many commands at the same instant never spend past a limit: the member's allowance, the
server's budget or the bot's budget, counted to the credit from the ledger."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.sandbox.fakediscord.records import FakeInteraction
from bot.sandbox.fakediscord.world import User
from bot.store import Job, LedgerKind
from tests.e2e.conftest import World

# A 5 s clip at 720p costs 20 credits with the default prices.
COST = 20
TEXT = {"prompt": "a lighthouse in a storm", "resolution": "720p", "duration": 5}


def answer(interaction: FakeInteraction) -> str | None:
    """ "accepted", "refused", or None while the bot is still on it."""
    response = interaction.response
    if response is None:
        return None
    if response.type == 4 or interaction.followups:
        return "refused"
    original = interaction.original
    if original is not None and original.embeds and not original.deleted:
        return "accepted"
    return None


def job_id(interaction: FakeInteraction) -> str:
    assert interaction.original is not None
    footer = str(interaction.original.embeds[0]["footer"]["text"])
    return footer.removeprefix("job ")


async def burst(world: World, users: list[User]) -> tuple[list[Job], list[str]]:
    """Every user's command at once; the jobs accepted (once ended) and the refusals' texts."""
    interactions = await asyncio.gather(
        *(world.command("pika text", dict(TEXT), user=user) for user in users)
    )
    await world.wait_for(lambda: all(answer(i) for i in interactions), timeout=60)
    refusals = [(await world.refusal(i)).text for i in interactions if answer(i) == "refused"]
    accepted = [job_id(i) for i in interactions if answer(i) == "accepted"]
    jobs = [await world.job(job) for job in accepted]
    return jobs, refusals


async def ledger_sums(world: World) -> Counter[LedgerKind]:
    assert world.store is not None
    sums: Counter[LedgerKind] = Counter()
    for member in world.fake.world.guilds[world.fake.guild.id].members:
        for entry in await world.store.ledger.for_member(world.fake.guild.id, member):
            sums[entry.kind] += entry.amount
    return sums


@pytest.mark.world(max_jobs_per_member=100, fal_concurrency=8)
async def test_a_hundred_commands_from_one_member_never_pass_the_allowance(world: World) -> None:
    jobs, refusals = await burst(world, [world.fake.member] * 100)
    assert len(jobs) == 100 // COST
    assert all(job.state == "delivered" for job in jobs), [(j.state, j.error) for j in jobs]
    assert len(refusals) == 100 - len(jobs)
    assert all("costs 20 credits" in text and "0 left" in text for text in refusals)
    sums = await ledger_sums(world)
    assert sums[LedgerKind.RESERVE] == 100  # exactly the allowance, never a credit more
    assert sums[LedgerKind.SETTLE] == 100
    assert sums[LedgerKind.REFUND] == 0
    assert world.fal.counts["submit"] == len(jobs)


@pytest.mark.parametrize(
    ("limit", "says"),
    [
        ({"guild_daily_budget": 300}, "server's daily budget"),
        ({"global_daily_budget": 260}, "bot's daily budget"),
    ],
    ids=["server budget", "global budget"],
)
async def test_a_hundred_members_at_once_never_pass_the_budget(
    world: World, limit: dict[str, int], says: str
) -> None:
    await world.stop()
    world.overrides.update(limit, fal_concurrency=8)
    await world.start()
    budget = next(iter(limit.values()))
    members = [await world.fake.add_member(f"member{n}") for n in range(100)]
    jobs, refusals = await burst(world, members)
    assert len(jobs) == budget // COST
    assert len({job.user_id for job in jobs}) == len(jobs)  # one job each, nobody twice
    assert len(refusals) == 100 - len(jobs)
    assert all(says in text for text in refusals)
    sums = await ledger_sums(world)
    assert sums[LedgerKind.RESERVE] - sums[LedgerKind.REFUND] == len(jobs) * COST <= budget
    assert sums[LedgerKind.SETTLE] == len(jobs) * COST
