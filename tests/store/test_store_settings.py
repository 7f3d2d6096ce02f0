"""Limits, blocks, server settings, the audit table and meta values."""

from __future__ import annotations

import pytest

from bot.store import InvalidBlockedWord, Store

GUILD = 1
ADMIN = 7


async def test_allowance_defaults_when_nothing_is_set(store: Store) -> None:
    assert await store.rules.allowance(GUILD, 100, [11, 12], default=100) == 100


async def test_allowance_is_the_highest_of_the_members_roles(store: Store) -> None:
    await store.rules.set_role_limit(GUILD, 11, 50, actor_id=ADMIN)
    await store.rules.set_role_limit(GUILD, 12, 300, actor_id=ADMIN)
    await store.rules.set_role_limit(GUILD, 13, 900, actor_id=ADMIN)  # a role the member lacks
    assert await store.rules.allowance(GUILD, 100, [11, 12], default=100) == 300
    # Even below the default: a role limit is a deliberate choice by the admins.
    assert await store.rules.allowance(GUILD, 100, [11], default=100) == 50


async def test_member_limit_beats_every_role(store: Store) -> None:
    await store.rules.set_role_limit(GUILD, 12, 300, actor_id=ADMIN)
    await store.rules.set_member_limit(GUILD, 100, 20, actor_id=ADMIN)
    assert await store.rules.allowance(GUILD, 100, [12], default=100) == 20
    assert await store.rules.allowance(GUILD, 101, [12], default=100) == 300


async def test_limits_are_per_server_and_removable(store: Store) -> None:
    await store.rules.set_role_limit(GUILD, 12, 300, actor_id=ADMIN)
    await store.rules.set_member_limit(GUILD, 100, 20, actor_id=ADMIN)
    assert await store.rules.allowance(2, 100, [12], default=100) == 100
    await store.rules.set_member_limit(GUILD, 100, None, actor_id=ADMIN)
    assert await store.rules.allowance(GUILD, 100, [12], default=100) == 300
    await store.rules.set_role_limit(GUILD, 12, None, actor_id=ADMIN)
    assert await store.rules.allowance(GUILD, 100, [12], default=100) == 100


async def test_setting_a_limit_again_replaces_it(store: Store) -> None:
    await store.rules.set_role_limit(GUILD, 12, 300, actor_id=ADMIN)
    await store.rules.set_role_limit(GUILD, 12, 10, actor_id=ADMIN)
    await store.rules.set_member_limit(GUILD, 100, 5, actor_id=ADMIN)
    assert await store.rules.role_limits(GUILD) == {12: 10}
    assert await store.rules.member_limits(GUILD) == {100: 5}


async def test_negative_allowance_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="negative"):
        await store.rules.set_role_limit(GUILD, 12, -1, actor_id=ADMIN)
    assert await store.rules.role_limits(GUILD) == {}


async def test_block_and_unblock(store: Store) -> None:
    await store.rules.block_member(GUILD, 100, actor_id=ADMIN, reason="spam")
    assert await store.rules.is_blocked(GUILD, 100)
    assert not await store.rules.is_blocked(2, 100)
    [block] = await store.rules.blocked_members(GUILD)
    assert (block.user_id, block.actor_id, block.reason) == (100, ADMIN, "spam")
    assert await store.rules.unblock_member(GUILD, 100, actor_id=ADMIN)
    assert not await store.rules.unblock_member(GUILD, 100, actor_id=ADMIN)
    assert not await store.rules.is_blocked(GUILD, 100)


async def test_guild_settings_default_to_nothing_set(store: Store) -> None:
    settings = await store.rules.settings(GUILD)
    assert settings.daily_budget is None
    assert settings.default_resolution is None
    assert settings.audit_channel_id is None
    assert settings.default_models == {}
    assert settings.blocklist == ()
    assert settings.channel_allowed(12345)


async def test_guild_settings_round_trip(store: Store) -> None:
    await store.rules.set_daily_budget(GUILD, 2_500, actor_id=ADMIN)
    await store.rules.set_default_resolution(GUILD, "1080p", actor_id=ADMIN)
    await store.rules.set_audit_channel(GUILD, 999, actor_id=ADMIN)
    await store.rules.set_default_model(GUILD, "text", "v2.2", actor_id=ADMIN)
    await store.rules.set_default_model(GUILD, "animate", "v2.1", actor_id=ADMIN)
    await store.rules.set_default_model(GUILD, "animate", None, actor_id=ADMIN)
    settings = await store.rules.settings(GUILD)
    assert (settings.daily_budget, settings.default_resolution, settings.audit_channel_id) == (
        2_500,
        "1080p",
        999,
    )
    assert settings.default_models == {"text": "v2.2"}
    await store.rules.set_daily_budget(GUILD, None, actor_id=ADMIN)
    assert (await store.rules.settings(GUILD)).daily_budget is None
    assert (await store.rules.settings(2)).audit_channel_id is None


async def test_allowed_channels_restrict_generation_once_listed(store: Store) -> None:
    assert await store.rules.allow_channel(GUILD, 50, actor_id=ADMIN)
    assert not await store.rules.allow_channel(GUILD, 50, actor_id=ADMIN)
    await store.rules.allow_channel(GUILD, 51, actor_id=ADMIN)
    settings = await store.rules.settings(GUILD)
    assert settings.allowed_channels == {50, 51}
    assert settings.channel_allowed(50)
    assert not settings.channel_allowed(52)
    assert await store.rules.disallow_channel(GUILD, 50, actor_id=ADMIN)
    assert not await store.rules.disallow_channel(GUILD, 50, actor_id=ADMIN)
    await store.rules.clear_allowed_channels(GUILD, actor_id=ADMIN)
    assert (await store.rules.settings(GUILD)).channel_allowed(52)


async def test_blocklist_words_are_trimmed_lowercased_and_unique(store: Store) -> None:
    assert await store.rules.add_blocked_word(GUILD, "  Gore ", actor_id=ADMIN)
    assert not await store.rules.add_blocked_word(GUILD, "GORE", actor_id=ADMIN)
    await store.rules.add_blocked_word(GUILD, "blood", actor_id=ADMIN)
    assert (await store.rules.settings(GUILD)).blocklist == ("blood", "gore")
    assert await store.rules.remove_blocked_word(GUILD, "Gore", actor_id=ADMIN)
    assert not await store.rules.remove_blocked_word(GUILD, "gore", actor_id=ADMIN)
    with pytest.raises(ValueError, match="empty"):
        await store.rules.add_blocked_word(GUILD, "   ", actor_id=ADMIN)


async def test_a_blocked_word_is_stored_by_the_one_word_rule(store: Store) -> None:
    # The rule the admin commands used before the store (runs of spaces are one space).
    assert await store.rules.add_blocked_word(GUILD, "  Red   CAR ", actor_id=ADMIN)
    assert (await store.rules.settings(GUILD)).blocklist == ("red car",)
    with pytest.raises(InvalidBlockedWord, match="at most 100"):
        await store.rules.add_blocked_word(GUILD, "x" * 101, actor_id=ADMIN)


async def test_admin_actions_are_audited_newest_first(store: Store) -> None:
    await store.rules.set_role_limit(GUILD, 12, 300, actor_id=ADMIN)
    await store.rules.block_member(GUILD, 100, actor_id=ADMIN, reason="spam")
    await store.ledger.grant(GUILD, 101, 25, period="2026-11-21", actor_id=ADMIN)
    await store.rules.set_daily_budget(2, 10, actor_id=ADMIN)  # another server's
    log = await store.audit.log(GUILD)
    assert [(e.action, e.actor_id) for e in log] == [
        ("grant", ADMIN),
        ("block", ADMIN),
        ("limit.role", ADMIN),
    ]
    assert log[1].details == {"user_id": 100, "reason": "spam"}
    assert [e.action for e in await store.audit.log(GUILD, limit=1)] == ["grant"]


async def test_add_audit_records_any_action(store: Store) -> None:
    entry = await store.audit.add(GUILD, ADMIN, "outputs.delete", {"job_id": "abcd2345"})
    assert (entry.action, entry.details) == ("outputs.delete", {"job_id": "abcd2345"})
    assert await store.audit.log(GUILD) == [entry]


async def test_meta_values_are_kept_and_replaced(store: Store) -> None:
    assert await store.meta.get("command_sync_hash") is None
    await store.meta.set("command_sync_hash", "abc")
    await store.meta.set("command_sync_hash", "def")
    assert await store.meta.get("command_sync_hash") == "def"
