"""What the bot does when it is removed from a server: end the jobs fal has not started."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

if TYPE_CHECKING:
    from bot.app import PikaBot

log = logging.getLogger(__name__)


class Guilds(commands.Cog):
    """Listens for the bot leaving a server (kicked, banned, or the server deleted)."""

    def __init__(self, bot: PikaBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        # discord.py sends this only for a true removal; an outage is on_guild_unavailable.
        log.info("removed from guild %s", guild.id)
        if self.bot.run_jobs:
            await self.bot.jobs.guild_removed(guild.id)


async def setup(bot: commands.Bot) -> None:
    from bot.app import PikaBot

    assert isinstance(bot, PikaBot)
    await bot.add_cog(Guilds(bot))
