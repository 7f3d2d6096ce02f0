"""Buttons on Pika posts. Their job id lives in the custom_id, so they work after a restart."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.jobs import CancelResult
from bot.jobs.render import button_id

if TYPE_CHECKING:
    from bot.app import PikaBot

CANCEL_REPLIES = {
    CancelResult.CANCELLED: "Cancelled before it started. You were not charged.",
    CancelResult.REQUESTED: "Asked fal to stop it. If fal stops it, you will not be charged; "
    "if it was already nearly done, the video will still arrive.",
    CancelResult.TOO_LATE: "Too late to cancel: the video is finished and on its way.",
    CancelResult.ALREADY_ENDED: "This job has already ended.",
    CancelResult.SENDING: "The job is being sent to fal this very second; try again in a moment.",
}


def not_yours() -> str:
    return "That's not your job: only the member who asked for it can use this button."


async def reply(interaction: discord.Interaction, message: str) -> None:
    """An ephemeral answer to a button click."""
    await interaction.response.send_message(
        message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"pika:cancel:(?P<job_id>[a-z2-7]{8})"
):
    """Cancel on a progress reply: the requester stops a waiting or running job."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel",
                style=discord.ButtonStyle.secondary,
                custom_id=button_id("cancel", job_id),
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> CancelButton:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: PikaBot = interaction.client  # type: ignore[assignment]
        job = await bot.jobs.get(self.job_id)
        if job is None:
            await reply(interaction, "This job no longer exists.")
            return
        if job.user_id != interaction.user.id:
            await reply(interaction, not_yours())
            return
        result = await bot.jobs.cancel(job.id, actor_id=interaction.user.id)
        await reply(interaction, CANCEL_REPLIES[result])


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (CancelButton,)


async def setup(bot: commands.Bot) -> None:
    bot.add_dynamic_items(*DYNAMIC_ITEMS)


async def teardown(bot: commands.Bot) -> None:
    bot.remove_dynamic_items(*DYNAMIC_ITEMS)
