"""/pikaadmin through real Discord traffic: only for Manage Server (checked again when it runs),
every action audited and mirrored to the audit channel, and every setting felt by members."""

from __future__ import annotations

from typing import Any

import pytest

from bot.emulator import JobScript
from bot.sandbox.fakediscord import CommandMismatch
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from bot.store import LedgerKind
from tests.e2e.conftest import World, embed_text

CHAT_INPUT = 1
MANAGE_GUILD = 1 << 5


async def reply(world: World, interaction: FakeInteraction) -> StoredMessage:
    """The command's immediate reply, checked to be seen by the caller alone."""
    response = await world.wait_for(lambda: interaction.response)
    assert response.type == 4, f"expected an immediate reply, got callback type {response.type}"
    assert response.ephemeral
    assert interaction.original is not None
    return interaction.original


def text_of(message: StoredMessage) -> str:
    return message.content + "\n" + embed_text(message)


async def admin(world: World, name: str, options: dict[str, Any] | None = None) -> str:
    """Run an admin command as the server's owner; what it answered."""
    interaction = await world.command(name, options or {}, user=world.fake.owner)
    return text_of(await reply(world, interaction))


async def accepted(world: World, interaction: FakeInteraction) -> str:
    """The job id once the command's progress reply shows it."""
    message = await world.wait_for(
        lambda: (
            interaction.original if interaction.original and interaction.original.embeds else None
        )
    )
    return str(message.embeds[0]["footer"]["text"]).removeprefix("job ")


async def quota_text(world: World, user: Any = None) -> str:
    interaction = await world.command("pika quota", user=user or world.fake.member)
    return text_of(await reply(world, interaction))


def show_admin_commands_to_everyone(world: World) -> None:
    """What a server's integration settings can do: show /pikaadmin to members without the
    permission (Discord then no longer hides it)."""
    command = world.fake.commands.find("pikaadmin", CHAT_INPUT, world.fake.guild.id)
    command["default_member_permissions"] = None


ADMIN_CALLS = [
    ("pikaadmin grant", lambda w: {"member": w.fake.member, "credits": 500}),
    ("pikaadmin reset", lambda w: {"member": w.fake.member}),
    ("pikaadmin block", lambda w: {"member": w.fake.owner}),
    ("pikaadmin unblock", lambda w: {"member": w.fake.member}),
    ("pikaadmin budget", lambda w: {"credits": 1_000_000}),
    ("pikaadmin limits member", lambda w: {"member": w.fake.member, "credits": 9999}),
    ("pikaadmin limits role", lambda w: {"role": w.fake.guild.id, "credits": 9999}),
    ("pikaadmin limits list", lambda w: {}),
    ("pikaadmin channels allow", lambda w: {"channel": w.fake.channel.id}),
    ("pikaadmin channels list", lambda w: {}),
    ("pikaadmin blocklist add", lambda w: {"word": "fox"}),
    ("pikaadmin usage", lambda w: {}),
    ("pikaadmin settings", lambda w: {"resolution": "1080p"}),
]


async def test_admin_commands_are_hidden_from_members_without_manage_server(world: World) -> None:
    with pytest.raises(CommandMismatch, match="hidden"):
        await world.command("pikaadmin grant", {"member": world.fake.member, "credits": 5})


async def test_admin_commands_are_refused_at_run_time_without_manage_server(
    world: World,
) -> None:
    show_admin_commands_to_everyone(world)
    for name, options in ADMIN_CALLS:
        refused = await world.refusal(await world.command(name, options(world)))
        assert refused.before_defer, name
        assert "Manage Server" in refused.text, name
    assert world.store is not None
    assert await world.store.audit.log(world.fake.guild.id) == []
    assert await world.ledger() == []
    settings = await world.store.rules.settings(world.fake.guild.id)
    assert settings.daily_budget is None
    assert not settings.allowed_channels
    assert not settings.blocklist
    assert settings.default_resolution is None
    assert not await world.store.rules.is_blocked(world.fake.guild.id, world.fake.owner.id)
    assert await world.store.rules.role_limits(world.fake.guild.id) == {}
    assert await world.store.rules.member_limits(world.fake.guild.id) == {}
    # The same commands work for a member whose role grants Manage Server.
    manager = await world.fake.add_member("manager", permissions=MANAGE_GUILD)
    interaction = await world.command(
        "pikaadmin grant", {"member": world.fake.member, "credits": 5}, user=manager
    )
    assert "5 credits" in text_of(await reply(world, interaction))


async def test_a_grant_is_audited_and_posted_to_the_audit_channel(world: World) -> None:
    audit = await world.fake.add_text_channel("pika-audit")
    said = await admin(world, "pikaadmin settings", {"audit_channel": audit.id})
    assert f"<#{audit.id}>" in said
    said = await admin(
        world,
        "pikaadmin grant",
        {"member": world.fake.member, "credits": 50, "note": "won the @everyone contest"},
    )
    assert "50 credits" in said
    posted = await world.wait_for(lambda: world.bot_messages(audit)[1:] or None)
    grant_post = posted[0]
    assert f"<@{world.fake.owner.id}>" in grant_post.content
    assert f"<@{world.fake.member.id}> 50 credits" in grant_post.content
    # Mentions are shown but never ping: not the member, not the admin, not @everyone.
    assert not grant_post.pings.users
    assert not grant_post.pings.everyone
    assert not grant_post.pings.roles
    [entry] = await world.ledger()
    assert (entry.kind, entry.amount, entry.actor_id) == (
        LedgerKind.GRANT,
        50,
        world.fake.owner.id,
    )
    assert world.store is not None
    actions = [e.action for e in await world.store.audit.log(world.fake.guild.id)]
    assert actions == ["grant", "settings.audit_channel_id"]
    assert "150 left" in (await quota_text(world)).replace("*", "")


async def test_the_highest_role_allowance_wins_and_a_member_allowance_beats_it(
    world: World,
) -> None:
    small = await world.fake.add_role("regulars", 0)
    big = await world.fake.add_role("patrons", 0)
    carol = await world.fake.add_member("carol", roles=[small, big])
    dave = await world.fake.add_member("dave", roles=[small])
    await admin(world, "pikaadmin limits role", {"role": small.id, "credits": 150})
    said = await admin(world, "pikaadmin limits role", {"role": big.id, "credits": 300})
    assert f"<@&{big.id}>" in said
    assert "Daily allowance\n300 credits" in await quota_text(world, carol)
    assert "Daily allowance\n150 credits" in await quota_text(world, dave)
    assert "Daily allowance\n100 credits" in await quota_text(world)  # no role with a limit
    await admin(world, "pikaadmin limits member", {"member": carol, "credits": 40})
    assert "Daily allowance\n40 credits" in await quota_text(world, carol)
    listed = await admin(world, "pikaadmin limits list")
    assert f"<@&{big.id}>: 300 credits" in listed
    assert f"<@{carol.id}>: 40 credits" in listed
    await admin(world, "pikaadmin limits member", {"member": carol})  # cleared
    assert "Daily allowance\n300 credits" in await quota_text(world, carol)
    # The allowance is what the reservation checks: 300 credits buy six 1080p clips.
    for n in range(6):
        job = await world.command(
            "pika text", {"prompt": f"clip {n}", "resolution": "1080p"}, user=carol
        )
        await world.job(await accepted(world, job))
    refused = await world.refusal(
        await world.command("pika text", {"prompt": "more", "resolution": "1080p"}, user=carol)
    )
    assert refused.before_defer
    assert "30 left" in refused.text
    assert "costs 45 credits" in refused.text
    assert "allowance is 300" in refused.text


async def test_a_blocked_member_is_refused_before_anything_is_charged(world: World) -> None:
    said = await admin(world, "pikaadmin block", {"member": world.fake.member, "reason": "spam"})
    assert "blocked" in said
    refused = await world.refusal(await world.command("pika text", {"prompt": "a fox"}))
    assert refused.before_defer
    assert "blocked from making videos" in refused.text
    assert await world.ledger() == []
    assert world.fal.counts["submit"] == 0
    await admin(world, "pikaadmin unblock", {"member": world.fake.member})
    job_id = await accepted(world, await world.command("pika text", {"prompt": "a fox"}))
    assert (await world.job(job_id)).state == "delivered"


async def test_a_disallowed_channel_is_refused_before_anything_is_charged(world: World) -> None:
    videos = await world.fake.add_text_channel("videos")
    said = await admin(world, "pikaadmin channels allow", {"channel": videos.id})
    assert f"only be made in <#{videos.id}>" in said
    refused = await world.refusal(await world.command("pika text", {"prompt": "a fox"}))
    assert refused.before_defer
    assert f"<#{videos.id}>" in refused.text
    assert await world.ledger() == []
    assert world.fal.counts["submit"] == 0
    job_id = await accepted(
        world, await world.command("pika text", {"prompt": "a fox"}, channel=videos)
    )
    assert (await world.job(job_id)).state == "delivered"
    assert f"<#{videos.id}>" in await admin(world, "pikaadmin channels list")
    await admin(world, "pikaadmin channels everywhere")
    job_id = await accepted(world, await world.command("pika text", {"prompt": "again"}))
    assert (await world.job(job_id)).state == "delivered"


async def test_blocked_words_are_refused_as_whole_words_in_any_case(world: World) -> None:
    await admin(world, "pikaadmin blocklist add", {"word": "Dragon"})
    assert "`dragon`" in await admin(world, "pikaadmin blocklist list")
    refused = await world.refusal(
        await world.command("pika text", {"prompt": "a red DRAGON over the sea"})
    )
    assert refused.before_defer
    assert '"dragon"' in refused.text
    refused = await world.refusal(
        await world.command("pika text", {"prompt": "a boat", "negative_prompt": "no dragon"})
    )
    assert refused.before_defer
    assert world.fal.counts["submit"] == 0
    job_id = await accepted(world, await world.command("pika text", {"prompt": "a dragonfly"}))
    await world.job(job_id)
    await admin(world, "pikaadmin blocklist remove", {"word": "dragon"})
    job_id = await accepted(world, await world.command("pika text", {"prompt": "a dragon"}))
    assert (await world.job(job_id)).state == "delivered"


async def test_the_server_budget_refuses_what_would_pass_it(world: World) -> None:
    await admin(world, "pikaadmin budget", {"credits": 30})
    refused = await world.refusal(
        await world.command("pika text", {"prompt": "big", "resolution": "1080p"})
    )
    assert refused.before_defer
    assert "server's daily budget" in refused.text
    assert "costs 45 credits" in refused.text
    assert "30 credits" in await admin(world, "pikaadmin budget")
    await admin(world, "pikaadmin budget", {"default": True})
    assert "1000 credits (the bot's default)" in await admin(world, "pikaadmin budget")
    job_id = await accepted(
        world, await world.command("pika text", {"prompt": "big", "resolution": "1080p"})
    )
    assert (await world.job(job_id)).cost == 45


async def test_a_reset_gives_a_member_their_credits_back(world: World) -> None:
    for n in range(2):
        await world.job(
            await accepted(world, await world.command("pika text", {"prompt": f"clip {n}"}))
        )
    assert "60 left" in (await quota_text(world)).replace("*", "")
    said = await admin(world, "pikaadmin reset", {"member": world.fake.member})
    assert "40 credits given back" in said
    assert "100 left" in (await quota_text(world)).replace("*", "")


async def test_server_defaults_apply_when_a_member_leaves_them_out(world: World) -> None:
    said = await admin(world, "pikaadmin settings", {"text_model": "v2.2", "resolution": "1080p"})
    assert "v2.2" in said
    assert "1080p" in said
    job_id = await accepted(world, await world.command("pika text", {"prompt": "a fox"}))
    submission = await world.submission(1)
    assert submission.endpoint_id == "fal-ai/pika/v2.2/text-to-video"
    assert submission.body["resolution"] == "1080p"
    assert (await world.job(job_id)).cost == 45
    # What the member does choose wins.
    await accepted(
        world,
        await world.command("pika text", {"prompt": "small", "resolution": "480p"}),
    )
    chosen = await world.submission(2)
    assert chosen.endpoint_id == "fal-ai/pika/v2.5/text-to-video"
    assert chosen.body["resolution"] == "480p"
    shown = await admin(world, "pikaadmin settings")
    assert "Default text model\nv2.2" in shown
    await admin(world, "pikaadmin settings", {"clear": "text_model"})
    assert "v2.5 (the bot's default)" in await admin(world, "pikaadmin settings")


async def test_usage_shows_spend_top_members_failures_and_refunds(world: World) -> None:
    await world.job(await accepted(world, await world.command("pika text", {"prompt": "ok"})))
    world.fal.script_next(JobScript(outcome="model_error"))
    await world.job(await accepted(world, await world.command("pika text", {"prompt": "bad"})))
    said = await admin(world, "pikaadmin usage", {"days": 7})
    assert "Spent 20 credits" in said
    assert "refunded: 20" in said
    assert f"<@{world.fake.member.id}>: 20 credits (2 jobs)" in said
    assert "model_error" in said or "fal_" in said
