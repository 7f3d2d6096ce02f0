"""Buttons on Pika posts. Their job id lives in the custom_id, so they work after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.jobs import Job
from bot.jobs.discord.render import JobButton, job_embed
from bot.jobs.followups import continue_request, remix_request, reroll_request
from bot.jobs.policy import Action, may_act_on
from bot.pika import PROMPT_MAX
from cogs.interactions import (
    CANCEL_REPLIES,
    MODAL_TIMEOUT_S,
    cancel_job,
    launch,
    member_of,
    reply,
)

if TYPE_CHECKING:
    from bot.app import PikaBot

NOT_YOURS = "That's not your job: only the member who asked for it can use this button."


async def clicked(button: JobButton, interaction: discord.Interaction) -> None:
    """A click on any of a job's buttons (JobButton.handler while this extension is loaded)."""
    bot: PikaBot = interaction.client  # type: ignore[assignment]
    try:
        await _clicked(bot, interaction, button.action, button.job_id)
    except Exception as error:
        await bot.report_error(interaction, error)


async def _clicked(
    bot: PikaBot, interaction: discord.Interaction, action: str, job_id: str
) -> None:
    job = await bot.jobs.get(job_id)
    if job is None:
        await reply(interaction, "This job no longer exists.")
        return
    handler = ACTIONS.get(action)
    if handler is None:
        await reply(interaction, "This button no longer does anything.")
        return
    if not may_act_on(job, member_of(interaction), Action(action)):
        await reply(interaction, NOT_YOURS)
        return
    await handler(bot, interaction, job)


async def _cancel(bot: PikaBot, interaction: discord.Interaction, job: Job) -> None:
    # Asking fal to stop a job (with its retries) may take longer than Discord's 3 seconds.
    await interaction.response.defer(ephemeral=True, thinking=True)
    result = await cancel_job(bot, job, actor_id=interaction.user.id)
    await interaction.followup.send(
        CANCEL_REPLIES[result], ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )


async def _reroll(bot: PikaBot, interaction: discord.Interaction, job: Job) -> None:
    # Whether the inputs are still kept is a look at the disk: off the event loop.
    request = await asyncio.to_thread(reroll_request, job, bot.cache)
    await launch(bot, interaction, request, parent_job_id=job.id)


async def _remix(bot: PikaBot, interaction: discord.Interaction, job: Job) -> None:
    # Refuses now, before the modal, if the files are gone.
    await asyncio.to_thread(reroll_request, job, bot.cache)
    await interaction.response.send_modal(RemixModal(bot, job))


async def _continue(bot: PikaBot, interaction: discord.Interaction, job: Job) -> None:
    # Reading the last frame takes a moment: acknowledge first.
    await interaction.response.defer(thinking=True)
    request = await continue_request(job, bot.cache)
    await launch(bot, interaction, request, parent_job_id=job.id)


async def _details(bot: PikaBot, interaction: discord.Interaction, job: Job) -> None:
    await interaction.response.send_message(
        embed=job_embed(job, details=True),
        ephemeral=True,
        allowed_mentions=discord.AllowedMentions.none(),
    )


async def _delete(bot: PikaBot, interaction: discord.Interaction, job: Job) -> None:
    await interaction.response.defer()
    await interaction.delete_original_response()
    await interaction.followup.send(
        f"Deleted the video of job `{job.id}`.",
        ephemeral=True,
        allowed_mentions=discord.AllowedMentions.none(),
    )


Handler = Callable[["PikaBot", discord.Interaction, Job], Awaitable[None]]
ACTIONS: dict[str, Handler] = {
    Action.CANCEL: _cancel,
    Action.REROLL: _reroll,
    Action.REMIX: _remix,
    Action.CONTINUE: _continue,
    Action.DETAILS: _details,
    Action.DELETE: _delete,
}


class RemixModal(discord.ui.Modal, title="Remix"):
    """Edit the prompt and negative prompt of a job, then make it again."""

    def __init__(self, bot: PikaBot, job: Job) -> None:
        # A modal left open is kept by discord.py until it times out: not for ever.
        super().__init__(custom_id=f"pika:remixmodal:{job.id}", timeout=MODAL_TIMEOUT_S)
        self.bot = bot
        self.job = job
        prompt = job.request.get("prompt")
        negative = job.request.get("negative_prompt")
        self.prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            label="Prompt",
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            default=prompt if isinstance(prompt, str) else None,
            required=False,
            max_length=PROMPT_MAX,
        )
        self.negative_prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            label="Negative prompt",
            custom_id="negative_prompt",
            style=discord.TextStyle.paragraph,
            default=negative if isinstance(negative, str) else None,
            required=False,
            max_length=PROMPT_MAX,
        )
        self.add_item(self.prompt)
        self.add_item(self.negative_prompt)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        # The modal was opened by the job's owner, but its submit is a new interaction: check
        # again who sends it, as every button does.
        if interaction.user.id != self.job.user_id:
            await reply(interaction, NOT_YOURS)
            return
        request = await asyncio.to_thread(
            remix_request,
            self.job,
            self.bot.cache,
            prompt=self.prompt.value,
            negative_prompt=self.negative_prompt.value,
        )
        await launch(self.bot, interaction, request, parent_job_id=self.job.id)

    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction, error: Exception, /
    ) -> None:
        await self.bot.report_error(interaction, error)


async def setup(bot: commands.Bot) -> None:
    JobButton.handler = clicked
    bot.add_dynamic_items(JobButton)


async def teardown(bot: commands.Bot) -> None:
    bot.remove_dynamic_items(JobButton)
    JobButton.handler = None
