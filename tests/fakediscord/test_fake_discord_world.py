"""The fake's pure parts: permission math, mention rules, OpenAPI path matching."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.sandbox.fakediscord import Pings
from bot.sandbox.fakediscord.world import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    ATTACH_FILES,
    EMBED_LINKS,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    Overwrite,
    Snowflakes,
    World,
)
from tests.fakediscord.openapi import find_spec, validator_for


@pytest.fixture
def world() -> World:
    return World(Snowflakes(lambda: datetime(2025, 1, 1, tzinfo=UTC)))


def _setup(world: World) -> tuple[int, int, int]:
    owner = world.add_user("owner")
    user = world.add_user("user")
    guild = world.add_guild("g", owner.id)
    role = world.add_role(guild.id, "r", ATTACH_FILES)
    world.add_member(guild.id, user.id, [role.id])
    channel = world.add_text_channel(guild.id, "c")
    return user.id, role.id, channel.id


def test_roles_add_to_everyone(world: World) -> None:
    user, _, channel = _setup(world)
    assert world.channel_permissions(world.channels[channel], user) & ATTACH_FILES


def test_member_overwrite_beats_role_overwrite(world: World) -> None:
    user, role, cid = _setup(world)
    channel = world.channels[cid]
    channel.overwrites[role] = Overwrite(role, 0, allow=EMBED_LINKS)
    channel.overwrites[user] = Overwrite(user, 1, deny=EMBED_LINKS)
    assert not world.channel_permissions(channel, user) & EMBED_LINKS


def test_no_view_channel_means_nothing(world: World) -> None:
    user, _, cid = _setup(world)
    channel = world.channels[cid]
    channel.overwrites[channel.guild_id or 0] = Overwrite(
        channel.guild_id or 0, 0, deny=VIEW_CHANNEL
    )
    assert world.channel_permissions(channel, user) == 0


def test_no_send_messages_takes_attach_files_away(world: World) -> None:
    user, _, cid = _setup(world)
    channel = world.channels[cid]
    channel.overwrites[user] = Overwrite(user, 1, deny=SEND_MESSAGES)
    assert not world.channel_permissions(channel, user) & ATTACH_FILES


def test_administrator_ignores_overwrites(world: World) -> None:
    user, role, cid = _setup(world)
    guild = next(iter(world.guilds.values()))
    guild.roles[role].permissions |= ADMINISTRATOR
    channel = world.channels[cid]
    channel.overwrites[user] = Overwrite(user, 1, deny=VIEW_CHANNEL)
    assert world.channel_permissions(channel, user) == ALL_PERMISSIONS


def test_snowflakes_are_unique_and_carry_the_time() -> None:
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    flakes = Snowflakes(lambda: moment)
    first, second = flakes.next(), flakes.next()
    assert first != second
    assert (first >> 22) == (second >> 22)


def test_allowed_mentions_limit_pings() -> None:
    content = "<@1> <@2> <@&3> @everyone"
    assert Pings.of(content, None) == Pings(frozenset({1, 2}), frozenset({3}), True)
    assert Pings.of(content, {"parse": [], "users": ["1"]}) == Pings(
        frozenset({1}), frozenset(), False
    )


def test_spec_paths_prefer_literal_segments() -> None:
    spec = find_spec()
    assert spec is not None, "Discord's openapi.json is needed for validation tests"
    validator = validator_for(str(spec))
    assert (
        validator.template_for("PATCH", "/webhooks/1/tok/messages/@original")
        == "/webhooks/{webhook_id}/{webhook_token}/messages/@original"
    )
    assert validator.template_for("GET", "/users/@me") == "/users/@me"
    assert validator.validate("POST", "/channels/1/messages", {"attachments": [{"id": 0}]}) == []
