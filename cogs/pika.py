"""The /pika cog: every /pika command (cogs.generate makes videos, cogs.members the rest) and the
"Animate with Pika" menu, loaded as one extension.

The commands are defined once, in those modules, on one shared group; this module, which
discord.py executes again at every load, only puts them together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord import app_commands
from discord.ext import commands

from cogs.generate import Generating
from cogs.members import Members

if TYPE_CHECKING:
    from bot.app import PikaBot


class Pika(Generating, Members):
    """Every /pika command, and the "Animate with Pika" menu."""

    def __init__(self, bot: PikaBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Animate with Pika", callback=self.animate_menu)
        self.menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)


async def setup(bot: commands.Bot) -> None:
    from bot.app import PikaBot

    assert isinstance(bot, PikaBot)
    await bot.add_cog(Pika(bot))
