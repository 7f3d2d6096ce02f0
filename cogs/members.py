"""The /pika commands about a member's jobs and credits (job, quota, history, cancel) and help."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.jobs import InvalidRequest, Job, JobState, kept_video
from bot.jobs.discord.render import job_embed, result_view
from bot.jobs.policy import Action, may_act_on
from bot.pika import EFFECTS, PROMPT_MAX, SEED_MAX, Mode, endpoint_for
from cogs.generate import Generating
from cogs.interactions import (
    CANCEL_REPLIES,
    AdminsOnly,
    cancel_job,
    manages_server,
    member_of,
)
from cogs.statements import history_embed, quota_embed

if TYPE_CHECKING:
    from bot.app import PikaBot


def no_such_job(id: str) -> InvalidRequest:
    """The refusal for a job id that is not the member's to act on (or does not exist): the two
    look alike, so an id says nothing about other members' jobs."""
    return InvalidRequest(
        f"There is no job `{id[:20]}` of yours in this server. Job ids are the 8 "
        "letters and digits under each Pika post; /pika history lists yours."
    )


class Members(commands.Cog):
    """The /pika commands that make nothing: a job shown again or cancelled, credits, history,
    help. They join the group after cogs.generate's commands, as they are synced."""

    bot: PikaBot
    pika = Generating.pika

    async def find(self, interaction: discord.Interaction, id: str, action: Action) -> Job:
        """The job with this id, if the member may act on it so; else the refusal."""
        job = await self.bot.jobs.get(id.strip().lower())
        if job is None or not may_act_on(job, member_of(interaction), action):
            raise no_such_job(id)
        return job

    # -- a member's jobs and credits -------------------------------------------------------

    @pika.command(name="job", description="Show one of your jobs again")
    @app_commands.describe(id="The job id (shown under every Pika post)")
    async def job(self, interaction: discord.Interaction, id: str) -> None:
        job = await self.find(interaction, id, Action.DETAILS)
        embed = job_embed(job)
        files: list[discord.File] = []
        view: discord.ui.View | None = None
        if job.state is JobState.DELIVERED:
            view = result_view(job)
            video = await kept_video(job, interaction.filesize_limit)
            if video is not None:
                files.append(discord.File(video, filename=f"pika-{job.id}.mp4"))
        await interaction.response.send_message(
            embed=embed,
            files=files,
            view=view or discord.utils.MISSING,
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @pika.command(
        name="quota", description="Your credits left today, when they reset, jobs running"
    )
    @app_commands.describe(member="Another member (only for members with Manage Server)")
    async def quota(
        self, interaction: discord.Interaction, member: discord.Member | None = None
    ) -> None:
        target = whose(interaction, member, "another member's credits")
        roles = [role.id for role in target.roles] if isinstance(target, discord.Member) else []
        quota = await self.bot.jobs.accounts.quota(interaction.guild_id or 0, target.id, roles)
        await interaction.response.send_message(
            embed=quota_embed(quota, own=target.id == interaction.user.id),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @pika.command(name="history", description="Your last 10 jobs in this server")
    @app_commands.describe(member="Another member (only for members with Manage Server)")
    async def history(
        self, interaction: discord.Interaction, member: discord.Member | None = None
    ) -> None:
        target = whose(interaction, member, "another member's history")
        jobs = await self.bot.store.jobs.recent(target.id, guild_id=interaction.guild_id or 0)
        await interaction.response.send_message(
            embed=history_embed(jobs, user_id=target.id, own=target.id == interaction.user.id),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @pika.command(name="cancel", description="Cancel a waiting or running job")
    @app_commands.describe(id="The job id (default: your newest unfinished job)")
    async def cancel(self, interaction: discord.Interaction, id: str | None = None) -> None:
        user, guild_id = interaction.user, interaction.guild_id or 0
        if id is None:
            job = await self.bot.store.jobs.newest_unfinished(user.id, guild_id=guild_id)
            if job is None:
                raise InvalidRequest(
                    "You have no job waiting or running in this server; /pika history lists "
                    "your jobs."
                )
        else:
            job = await self.find(interaction, id, Action.CANCEL)
        # Cancelling a job at fal asks fal, which may take longer than Discord's 3 seconds.
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await cancel_job(self.bot, job, actor_id=user.id)
        await interaction.followup.send(
            f"Job `{job.id}`: {CANCEL_REPLIES[result]}",
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @pika.command(name="help", description="How to use each mode, what it costs, and the limits")
    @app_commands.describe(topic="A mode, or leave out for an overview")
    @app_commands.choices(topic=[app_commands.Choice(name=m.value, value=m.value) for m in Mode])
    async def help(self, interaction: discord.Interaction, topic: str | None = None) -> None:
        await interaction.response.send_message(
            embed=help_embed(self.bot, None if topic is None else Mode(topic)),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )


HELP = {
    Mode.TEXT: "`/pika text prompt:` a video from words alone. Options: aspect_ratio (not with "
    "model v2.5), resolution (480p only with v2.5), duration 5 or 10 s, model.",
    Mode.ANIMATE: "`/pika animate image: prompt:` brings a PNG, JPEG or WebP image (at least "
    "256 px a side, at most 20 MiB) to life. Or right-click a message with an image: Apps → "
    "Animate with Pika.",
    Mode.FRAMES: "`/pika frames image1: image2: …image5:` moves through 2 to 5 keyframes. "
    "durations is one number of seconds per transition (e.g. 5,5,10; at most 25 in all); "
    "prompts is one prompt per transition separated by |.",
    Mode.SCENES: "`/pika scenes image1: prompt:` builds a scene from 1 to 6 images of its "
    "ingredients (characters, objects, places); ingredients_mode precise or creative.",
    Mode.EFFECT: "`/pika effect image: effect:` applies one of 16 Pikaffects: "
    + ", ".join(c.value for c in EFFECTS)
    + ".",
    Mode.SWAP: "`/pika swap video:` replaces something in a video (MP4, MOV or WebM, at most "
    "30 s and 50 MiB) with an image or a prompt; region names what to replace.",
    Mode.ADD: "`/pika add video: image:` adds what the image shows into the video.",
}


def help_embed(bot: PikaBot, topic: Mode | None) -> discord.Embed:
    """The /pika help page: one mode in detail, or an overview with prices and limits."""
    from bot.pika import price_table

    settings = bot.settings
    embed = discord.Embed(title="Pika videos", colour=discord.Colour.blurple())
    modes = list(Mode) if topic is None else [topic]
    for mode in modes:
        rows = [r for r in price_table(settings.prices) if r.endpoint.mode is mode]
        default = [r for r in rows if r.endpoint.id == ENDPOINTS_DEFAULT[mode]] or rows
        prices = ", ".join(
            f"{r.label}: {r.credits}" + (" per second" if r.per_second else "") for r in default[:6]
        )
        embed.add_field(
            name=f"/pika {mode.value}", value=f"{HELP[mode]}\nCredits: {prices}", inline=False
        )
    embed.add_field(
        name="Limits",
        value=(
            f"{settings.daily_allowance} credits per member per day by default (server admins "
            f"may change it), reset at {settings.reset_hour:02d}:00 UTC; at most "
            f"{settings.max_jobs_per_member} unfinished jobs each. Prompts up to "
            f"{PROMPT_MAX} characters; seeds 0 to {SEED_MAX}. You are only charged for a "
            "video you receive."
        ),
        inline=False,
    )
    return embed


ENDPOINTS_DEFAULT = {mode: endpoint_for(mode).id for mode in Mode}


def whose(
    interaction: discord.Interaction, member: discord.Member | None, what: str
) -> discord.Member | discord.User:
    """The member a command is about: the caller, or another member if the caller is an admin."""
    if member is None or member.id == interaction.user.id:
        return interaction.user
    if not manages_server(interaction):
        raise AdminsOnly(what)
    return member
