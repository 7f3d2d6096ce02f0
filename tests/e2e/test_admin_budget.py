"""/pikaadmin budget cannot promise a server more than the operator's global daily budget."""

from __future__ import annotations

from tests.e2e.conftest import World
from tests.e2e.test_admin import admin


async def test_a_server_budget_above_the_global_budget_is_refused(world: World) -> None:
    assert world.bot is not None
    ceiling = world.bot.settings.global_daily_budget
    said = await admin(world, "pikaadmin budget", {"credits": ceiling + 1})

    assert "at most" in said
    assert f"{ceiling} credits" in said
    assert "nothing changed" in said.lower()
    assert world.store is not None
    settings = await world.store.rules.settings(world.fake.guild.id)
    assert settings.daily_budget is None
    assert await world.store.audit.log(world.fake.guild.id) == []


async def test_a_server_budget_equal_to_the_global_budget_is_set(world: World) -> None:
    assert world.bot is not None
    ceiling = world.bot.settings.global_daily_budget
    said = await admin(world, "pikaadmin budget", {"credits": ceiling})

    assert f"set this server's daily budget to {ceiling} credits" in said
    assert world.store is not None
    settings = await world.store.rules.settings(world.fake.guild.id)
    assert settings.daily_budget == ceiling
