"""/pika quota and /pika history: a member always knows what they have left and why, and the
numbers are the ledger's."""

from __future__ import annotations

import re

import pytest

from bot.emulator import JobScript
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from bot.store import LedgerKind, next_reset
from tests.e2e.conftest import World, embed_text


async def reply(world: World, interaction: FakeInteraction) -> StoredMessage:
    response = await world.wait_for(lambda: interaction.response)
    assert response.type == 4
    assert response.ephemeral
    assert interaction.original is not None
    return interaction.original


async def accepted(world: World, interaction: FakeInteraction) -> str:
    message = await world.wait_for(
        lambda: (
            interaction.original if interaction.original and interaction.original.embeds else None
        )
    )
    return str(message.embeds[0]["footer"]["text"]).removeprefix("job ")


def fields(message: StoredMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0].get("fields", [])}


def amount(value: str) -> int:
    found = re.fullmatch(r"(\d+) credits?", value)
    assert found, value
    return int(found[1])


@pytest.mark.world(max_jobs_per_member=3, reset_hour=6)
async def test_quota_numbers_match_the_ledger(world: World) -> None:
    assert world.bot is not None
    await world.job(await accepted(world, await world.command("pika text", {"prompt": "ok"})))
    world.fal.script_next(JobScript(outcome="model_error"))
    await world.job(await accepted(world, await world.command("pika text", {"prompt": "bad"})))
    world.fal.script_next(JobScript(hold_in_queue=True))
    held = await accepted(
        world, await world.command("pika text", {"prompt": "held", "resolution": "1080p"})
    )
    await world.submission(3)
    await world.bot.jobs.accounts.grant(
        world.fake.guild.id, world.fake.member.id, 15, actor_id=world.fake.owner.id
    )

    shown = fields(await reply(world, await world.command("pika quota")))
    sums = {kind: 0 for kind in LedgerKind}
    for entry in await world.ledger():
        sums[entry.kind] += entry.amount
    used = sums[LedgerKind.RESERVE] - sums[LedgerKind.REFUND]
    reserved = used - sums[LedgerKind.SETTLE]
    granted = sums[LedgerKind.GRANT] + sums[LedgerKind.RESET]
    assert (used, reserved, granted) == (20 + 45, 45, 15)
    assert amount(shown["Used today"]) == used
    assert amount(shown["Reserved"]) == reserved
    assert amount(shown["Granted today"]) == granted
    assert amount(shown["Daily allowance"]) == 100
    assert amount(shown["Left"]) == 100 + granted - used
    assert f"<t:{next_reset(world.epoch(), 6)}:R>" in shown["Resets"]
    running = next(value for name, value in shown.items() if name.startswith("Jobs running"))
    assert f"`{held}`" in running
    assert "Jobs running: 1 of at most 3" in shown


async def test_history_lists_the_last_jobs_with_status_cost_and_links(world: World) -> None:
    first = await accepted(world, await world.command("pika text", {"prompt": "ok"}))
    await world.job(first)
    world.fal.script_next(JobScript(outcome="model_error"))
    second = await accepted(world, await world.command("pika text", {"prompt": "bad"}))
    await world.job(second)
    history = embed_text(await reply(world, await world.command("pika history")))
    lines = history.splitlines()
    newest = next(line for line in lines if second in line)
    oldest = next(line for line in lines if first in line)
    assert lines.index(newest) < lines.index(oldest)
    assert "failed" in newest
    assert "20 credits refunded" in newest
    assert "delivered" in oldest
    assert "20 credits" in oldest
    post = world.posts()[0]
    assert f"/{post.channel_id}/{post.id})" in oldest


async def test_another_members_quota_and_history_are_for_admins_only(world: World) -> None:
    await world.job(await accepted(world, await world.command("pika text", {"prompt": "ok"})))
    nosy = await world.fake.add_member("nosy")
    for name in ("pika quota", "pika history"):
        refused = await world.refusal(
            await world.command(name, {"member": world.fake.member}, user=nosy)
        )
        assert refused.before_defer
        assert "Manage Server" in refused.text
    owner = world.fake.owner
    seen = embed_text(
        await reply(
            world, await world.command("pika quota", {"member": world.fake.member}, user=owner)
        )
    )
    assert f"<@{world.fake.member.id}>'s credits" in seen
    assert "80" in seen
    seen = embed_text(
        await reply(
            world, await world.command("pika history", {"member": world.fake.member}, user=owner)
        )
    )
    assert "delivered" in seen


@pytest.mark.world(max_jobs_per_member=5, reset_hour=6)
async def test_credits_come_back_at_the_reset_hour(world: World) -> None:
    for n in range(5):
        await world.job(
            await accepted(world, await world.command("pika text", {"prompt": f"clip {n}"}))
        )
    reset = next_reset(world.epoch(), 6)
    refused = await world.refusal(await world.command("pika text", {"prompt": "one more"}))
    assert refused.before_defer
    assert "costs 20 credits" in refused.text
    assert "0 left" in refused.text
    assert f"<t:{reset}:R>" in refused.text
    world.clock.advance(reset - world.epoch() - 30)
    still = await world.refusal(await world.command("pika text", {"prompt": "one more"}))
    assert "0 left" in still.text
    world.clock.advance(30)
    job_id = await accepted(world, await world.command("pika text", {"prompt": "a new day"}))
    assert (await world.job(job_id)).state == "delivered"
    periods = [entry.period for entry in await world.ledger() if entry.kind == "reserve"]
    assert len(set(periods[:5])) == 1
    assert periods[5] != periods[0]
