"""Discord's rules as the fake enforces them: deadlines, tokens, visibility, faults, permissions."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import aiohttp
import discord
import pytest
from discord.ext import commands
from discord.http import Route

from bot.sandbox.fakediscord import FakeDiscord, MovableClock, ValidationFailed
from bot.sandbox.fakediscord.world import ATTACH_FILES

from .conftest import TOKEN, DemoBot


def _bot_channel(bot: DemoBot, fake: FakeDiscord) -> discord.TextChannel:
    channel = bot.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_interaction_not_acknowledged_within_3_seconds_is_unknown(
    fake: FakeDiscord, bot: DemoBot, clock: MovableClock
) -> None:
    interaction = await fake.command(
        fake.member, fake.channel, "pika secret", created_at=clock() - timedelta(seconds=4)
    )
    error = await asyncio.wait_for(bot.errors.get(), 10)

    assert isinstance(error, discord.NotFound)
    assert error.code == 10062
    assert not interaction.acknowledged


async def test_second_callback_is_already_acknowledged(fake: FakeDiscord, bot: DemoBot) -> None:
    interaction = await fake.command(fake.member, fake.channel, "pika later")
    await fake.wait_for_response(interaction)
    url = f"{fake.api_url}/interactions/{interaction.id}/{interaction.token}/callback"

    async with aiohttp.ClientSession() as session, session.post(url, json={"type": 5}) as answer:
        body = await answer.json()

    assert (answer.status, body["code"]) == (400, 40060)
    bot.release.set()
    await fake.wait_for(lambda: interaction.followups)


async def test_followup_after_15_minutes_fails_with_invalid_token(
    fake: FakeDiscord, bot: DemoBot, clock: MovableClock
) -> None:
    interaction = await fake.command(fake.member, fake.channel, "pika later")
    await fake.wait_for_response(interaction)

    clock.advance(timedelta(minutes=15, seconds=1))
    bot.release.set()
    error = await asyncio.wait_for(bot.errors.get(), 10)

    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (401, 50027)
    assert interaction.followups == []
    assert bot.expired_seen == [False]


async def test_shared_clock_lets_discord_py_see_the_expiry(
    fake: FakeDiscord, bot: DemoBot, clock: MovableClock
) -> None:
    with fake.patch_discord_py(share_clock=True):
        interaction = await fake.command(fake.member, fake.channel, "pika later")
        await fake.wait_for_response(interaction)
        clock.advance(timedelta(minutes=16))
        bot.release.set()
        await asyncio.wait_for(bot.errors.get(), 10)

    assert bot.expired_seen == [True]


async def test_first_followup_of_a_deferred_reply_inherits_its_visibility(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    interaction = await fake.command(fake.member, fake.channel, "pika secret")
    await fake.wait_for(lambda: len(interaction.followups) == 2)

    first, second = interaction.followups
    assert first is interaction.original
    assert (first.content, first.visibility) == ("first (asked public)", "ephemeral")
    assert (second.content, second.visibility) == ("second (asked public)", "public")


async def test_429_with_via_is_waited_out_by_discord_py(fake: FakeDiscord, bot: DemoBot) -> None:
    fake.fail_next("POST", "/channels/*/messages", 429, retry_after=0.01)

    sent = await _bot_channel(bot, fake).send("hello")

    statuses = [r.status for r in fake.requests_to("POST", "/channels/*/messages")]
    assert statuses == [429, 200]
    assert fake.message(sent.id).content == "hello"


async def test_429_without_via_is_raised_by_discord_py(fake: FakeDiscord, bot: DemoBot) -> None:
    fake.fail_next("POST", "/channels/*/messages", 429, retry_after=0.01, via=False)

    with pytest.raises(discord.HTTPException) as caught:
        await _bot_channel(bot, fake).send("hello")

    assert caught.value.status == 429


async def test_injected_5xx_is_a_server_error(fake: FakeDiscord, bot: DemoBot) -> None:
    fake.fail_next("POST", "/channels/*/messages", 503)

    with pytest.raises(discord.DiscordServerError):
        await _bot_channel(bot, fake).send("hello")


async def test_injected_403_carries_missing_permissions(fake: FakeDiscord, bot: DemoBot) -> None:
    fake.fail_next("POST", "/channels/*/messages", 403)

    with pytest.raises(discord.Forbidden) as caught:
        await _bot_channel(bot, fake).send("hello")

    assert caught.value.code == 50013


async def test_denied_attach_files_shows_in_cache_interactions_and_uploads(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    updated = asyncio.ensure_future(bot.wait_for("guild_channel_update"))
    await fake.set_bot_permissions(fake.channel, deny=ATTACH_FILES)
    await asyncio.wait_for(updated, 10)
    channel = _bot_channel(bot, fake)

    assert not channel.permissions_for(channel.guild.me).attach_files
    with pytest.raises(discord.Forbidden) as caught:
        await channel.send(file=discord.File(io.BytesIO(b"data"), "a.txt"))
    assert caught.value.code == 50013
    interaction = await fake.command(fake.member, fake.channel, "pika secret")
    assert not int(interaction.payload["app_permissions"]) & ATTACH_FILES
    await fake.wait_for(lambda: len(interaction.followups) == 2)


async def test_upload_over_the_size_limit_is_refused(fake: FakeDiscord, bot: DemoBot) -> None:
    fake.set_attachment_size_limit(100, channel=fake.channel)

    with pytest.raises(discord.HTTPException) as caught:
        await _bot_channel(bot, fake).send(file=discord.File(io.BytesIO(b"x" * 101), "big.bin"))

    assert (caught.value.status, caught.value.code) == (413, 40005)


async def test_deleted_channel_is_unknown(fake: FakeDiscord, bot: DemoBot) -> None:
    await fake.delete_channel(fake.channel)

    with pytest.raises(discord.NotFound) as caught:
        await bot.get_partial_messageable(fake.channel.id).send("anyone?")

    assert caught.value.code == 10003


async def test_followup_into_a_deleted_channel_is_unknown_channel(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    interaction = await fake.command(fake.member, fake.channel, "pika later")
    await fake.wait_for_response(interaction)

    await fake.delete_channel(fake.channel)
    bot.release.set()
    error = await asyncio.wait_for(bot.errors.get(), 10)

    assert isinstance(error, discord.NotFound)
    assert error.code == 10003


async def test_dm_to_a_user_with_closed_dms_is_forbidden(fake: FakeDiscord, bot: DemoBot) -> None:
    fake.close_dms(fake.member)
    user = await bot.fetch_user(fake.member.id)

    with pytest.raises(discord.Forbidden) as caught:
        await user.send("your video is ready")

    assert caught.value.code == 50007


async def test_dm_to_a_user_is_recorded_in_the_dm_channel(fake: FakeDiscord, bot: DemoBot) -> None:
    user = await bot.fetch_user(fake.member.id)

    sent = await user.send("your video is ready")

    stored = fake.message(sent.id)
    assert stored.guild_id is None
    assert fake.world.channels[stored.channel_id].recipient_id == fake.member.id


async def test_bot_edits_and_deletes_its_channel_message(fake: FakeDiscord, bot: DemoBot) -> None:
    sent = await _bot_channel(bot, fake).send("v1")
    fetched = await _bot_channel(bot, fake).fetch_message(sent.id)
    await fetched.edit(content="v2")
    await fetched.delete()

    stored = fake.message(sent.id)
    assert [v.content for v in stored.history] == ["v1"]
    assert (stored.content, stored.deleted) == ("v2", True)


async def test_invalid_body_is_reported_by_validation(fake: FakeDiscord, bot: DemoBot) -> None:
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=fake.channel.id)
    await bot.http.request(route, json={"content": "ok", "embeds": [{"title": 5}]})

    with pytest.raises(ValidationFailed, match="embeds"):
        fake.assert_valid()
    fake.violations.clear()


async def test_answers_use_the_exact_json_content_type(fake: FakeDiscord) -> None:
    url = f"{fake.api_url}/gateway"
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        assert answer.headers["Content-Type"] == "application/json"
        assert (await answer.json())["url"] == fake.gateway_url


async def test_bot_token_is_never_recorded(fake: FakeDiscord, bot: DemoBot) -> None:
    await _bot_channel(bot, fake).send("hi")

    records = repr(fake.requests) + repr(fake.frames) + repr(fake)
    assert TOKEN not in records
    assert all(r.bot_auth for r in fake.requests_to("POST", "/channels/*/messages"))


async def test_reconnect_resumes_the_session(fake: FakeDiscord, bot: DemoBot) -> None:
    resumed = asyncio.ensure_future(bot.wait_for("resumed"))
    await fake.send_reconnect()
    await asyncio.wait_for(resumed, 10)

    assert [s.resumes for s in fake.sessions] == [1]
    interaction = await fake.command(fake.member, fake.channel, "pika secret")
    await fake.wait_for(lambda: len(interaction.followups) == 2)


async def test_restarted_bot_identifies_again(fake: FakeDiscord, bot: DemoBot) -> None:
    await bot.close()
    second = DemoBot(fake.guild.id)
    runner = asyncio.create_task(second.start(TOKEN))
    try:
        await asyncio.wait_for(second.wait_until_ready(), 10)
        assert len(fake.sessions) == 2
        interaction = await fake.command(fake.member, fake.channel, "pika secret")
        await fake.wait_for(lambda: len(interaction.followups) == 2)
    finally:
        await second.close()
        await asyncio.wait_for(runner, 10)


async def test_public_interaction_message_is_editable_with_the_bot_token(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    interaction = await fake.command(fake.member, fake.channel, "pika secret")
    await fake.wait_for(lambda: len(interaction.followups) == 2)
    ephemeral, public = interaction.followups
    channel = _bot_channel(bot, fake)

    fetched = await channel.fetch_message(public.id)
    await fetched.edit(content="edited late")
    with pytest.raises(discord.NotFound) as caught:
        await channel.fetch_message(ephemeral.id)

    assert public.content == "edited late"
    assert caught.value.code == 10008


async def test_unknown_route_is_answered_404_and_reported(fake: FakeDiscord, bot: DemoBot) -> None:
    with pytest.raises(discord.NotFound):
        await bot.http.request(Route("GET", "/stickers/{sticker_id}", sticker_id=1))

    assert [r.path for r in fake.requests if r.unknown] == ["/stickers/1"]
    with pytest.raises(ValidationFailed, match="unknown route: GET /stickers/1"):
        fake.assert_valid()
    fake.requests.clear()


async def test_sharded_bot_finds_the_gateway_through_gateway_bot(fake: FakeDiscord) -> None:
    sharded = commands.AutoShardedBot(
        command_prefix=commands.when_mentioned,
        intents=discord.Intents.default(),
        guild_ready_timeout=0.1,
    )
    runner = asyncio.create_task(sharded.start(TOKEN))
    try:
        await asyncio.wait_for(sharded.wait_until_ready(), 10)
        assert fake.requests_to("GET", "/gateway/bot")
        assert [s.shard for s in fake.sessions] == [(0, 1)]
        assert sharded.get_guild(fake.guild.id) is not None
    finally:
        await sharded.close()
        await asyncio.wait_for(runner, 10)


async def test_wrong_token_fails_login(fake: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.default())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()
