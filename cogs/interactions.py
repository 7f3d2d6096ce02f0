"""What every cog reads from an interaction (who, where, with which permissions) and the replies
they share: starting a job's progress reply, cancelling a job, an ephemeral answer."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import aiohttp
import discord
from discord import app_commands

from bot.jobs import CancelResult, Job, Requester
from bot.jobs.discord.render import missing_permissions, progress_embed, progress_view
from bot.jobs.messenger import Progress, Stage
from bot.jobs.policy import JobStillRuns, Member
from bot.pika import PikaRequest

if TYPE_CHECKING:
    from bot.app import PikaBot

log = logging.getLogger(__name__)

# A modal left open is kept by discord.py until it times out: not for ever.
MODAL_TIMEOUT_S = 15 * 60

CANCEL_REPLIES = {
    CancelResult.CANCELLED: "Cancelled before it started. You were not charged.",
    CancelResult.REQUESTED: "Asked fal to stop it. If fal stops it, you will not be charged; "
    "if it was already nearly done, the video will still arrive.",
    CancelResult.TOO_LATE: "Too late to cancel: the video is finished and on its way.",
    CancelResult.ALREADY_ENDED: "This job has already ended.",
    CancelResult.SENDING: "The job is being sent to fal this very second; try again in a moment.",
}


class AdminsOnly(app_commands.CheckFailure):
    """A member asked for something only the server's admins may see (another member's credits
    or history)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"Only members with the Manage Server permission can see {what}.")


def manages_server(interaction: discord.Interaction) -> bool:
    """Whether the member may manage this server (Administrator implies it)."""
    permissions = interaction.permissions
    return interaction.guild_id is not None and (
        permissions.manage_guild or permissions.administrator
    )


def member_of(interaction: discord.Interaction) -> Member:
    """The member as the job rules see them: their permissions in this channel."""
    permissions = interaction.permissions
    in_guild = interaction.guild_id is not None
    return Member(
        user_id=interaction.user.id,
        guild_id=interaction.guild_id,
        manage_messages=in_guild and (permissions.manage_messages or permissions.administrator),
        manage_server=manages_server(interaction),
    )


def requester_of(interaction: discord.Interaction) -> Requester:
    """Who asked, where, and the interaction's token and upload limit."""
    user = interaction.user
    roles = [role.id for role in user.roles] if isinstance(user, discord.Member) else []
    channel = interaction.channel
    return Requester(
        guild_id=interaction.guild_id or 0,
        # A thread's replies and video go into the thread; the allow-list goes by its parent.
        channel_id=interaction.channel_id or 0,
        parent_channel_id=channel.parent_id if isinstance(channel, discord.Thread) else None,
        user_id=user.id,
        role_ids=roles,
        interaction_id=interaction.id,
        interaction_token=interaction.token,
        token_expires_at=int(interaction.expires_at.timestamp()),
        upload_limit=interaction.filesize_limit,
    )


def in_thread(interaction: discord.Interaction) -> bool:
    """Whether the interaction came from a thread (or a forum post, which is one)."""
    return isinstance(interaction.channel, discord.Thread)


async def reply(interaction: discord.Interaction, message: str) -> None:
    """An ephemeral answer, before anything else was said."""
    await interaction.response.send_message(
        message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )


async def launch(
    bot: PikaBot,
    interaction: discord.Interaction,
    request: PikaRequest,
    *,
    parent_job_id: str | None = None,
) -> None:
    """Accept a validated request (reserving its cost) and show its progress reply.

    Acknowledges the interaction first if the caller has not (buttons and modals that start
    a job come here straight after their cheap checks).
    """
    if not interaction.response.is_done():
        await interaction.response.defer(thinking=True)
    accepted = await bot.jobs.accept(
        request, requester_of(interaction), parent_job_id=parent_job_id
    )
    # From here on the job is accepted and its credits held: it runs whatever fails below, so
    # no error may say "nothing was charged" (JobStillRuns says it is accepted, with its id).
    job = accepted.job
    message_id: int | None = None
    try:
        permissions = interaction.app_permissions
        missing = (
            missing_permissions(permissions, thread=in_thread(interaction))
            if interaction.guild_id
            else []
        )
        message = await interaction.edit_original_response(
            embed=progress_embed(
                job, Progress(Stage.WAITING, position=accepted.position), missing=missing
            ),
            view=progress_view(job),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        message_id = message.id
    except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as error:
        # Discord refused it or the connection failed: the next progress edit fills it in.
        log.warning("job %s: the first progress reply failed: %r", job.id, error)
    except Exception as error:
        await bot.jobs.progress_posted(job, None, accepted.position)
        raise JobStillRuns.unshown(job.id) from error
    try:
        await bot.jobs.progress_posted(job, message_id, accepted.position)
    except Exception as error:
        # Remembering the reply failed (the database): start the job without it.
        await bot.jobs.progress_posted(job, None, accepted.position)
        raise JobStillRuns.unshown(job.id) from error


async def cancel_job(bot: PikaBot, job: Job, *, actor_id: int) -> CancelResult:
    """Cancel a job for /pika cancel or its Cancel button; a failure says the job runs on."""
    try:
        return await bot.jobs.cancel(job.id, actor_id=actor_id)
    except Exception as error:
        raise JobStillRuns.uncancelled(job.id) from error
