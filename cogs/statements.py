"""What credits and spending look like in Discord: /pika quota and history, and the replies of
/pikaadmin (limits, usage, settings, audit posts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import discord

from bot.jobs.accounts import Quota, ServerLimits, Usage
from bot.jobs.discord.render import timestamp
from bot.pika import DEFAULT_MODEL, MODELS
from bot.store import DeliveryPath, GuildSettings, Job, JobState

COLOUR = discord.Colour.blurple()
ENDED_WITHOUT_CHARGE = frozenset({JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN})
STATE_WORDS = {
    JobState.QUEUED: "waiting",
    JobState.SUBMITTING: "sending to fal",
    JobState.SUBMITTED: "in fal's queue",
    JobState.RUNNING: "generating",
    JobState.COMPLETED: "fetching",
    JobState.DOWNLOADED: "posting",
    JobState.DELIVERED: "delivered",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
    JobState.UNKNOWN: "lost at fal",
}


def clock_time(epoch: int) -> str:
    """A Discord timestamp with the date and time, in each reader's own time zone."""
    return discord.utils.format_dt(datetime.fromtimestamp(epoch, UTC), "f")


def credits(amount: int) -> str:
    """An amount of credits in words."""
    return f"{amount} credit{'' if amount == 1 else 's'}"


def quota_embed(quota: Quota, *, own: bool) -> discord.Embed:
    """/pika quota: what is left today, what is held, when it resets, which jobs run."""
    balance = quota.balance
    whose = "Your" if own else f"<@{quota.user_id}>'s"
    embed = discord.Embed(title="Pika credits", colour=COLOUR)
    embed.description = (
        f"{whose} credits in this server today: **{max(0, balance.left)}** left of "
        f"{balance.allowance + balance.granted}."
    )
    if quota.blocked:
        embed.description += "\nBlocked from making videos in this server by its admins."
    embed.add_field(name="Left", value=credits(max(0, balance.left)), inline=True)
    embed.add_field(name="Daily allowance", value=credits(balance.allowance), inline=True)
    embed.add_field(name="Granted today", value=credits(balance.granted), inline=True)
    embed.add_field(name="Used today", value=credits(balance.used), inline=True)
    embed.add_field(name="Reserved", value=credits(balance.reserved), inline=True)
    embed.add_field(
        name="Resets",
        value=f"{timestamp(quota.resets_at)} ({clock_time(quota.resets_at)})",
        inline=True,
    )
    lines = [
        f"`{job.id}` {job.mode}: {STATE_WORDS.get(job.state, job.state.value)}, "
        f"{credits(job.cost)} reserved"
        for job in quota.unfinished[:10]
    ]
    embed.add_field(
        name=f"Jobs running: {quota.running} of at most {quota.max_jobs}",
        value="\n".join(lines) or "none",
        inline=False,
    )
    embed.set_footer(text="Reserved credits come back if a job fails or is cancelled.")
    return embed


def history_line(job: Job) -> str:
    """One job in /pika history: id, mode, status, cost, when, and where its video is."""
    if job.state in ENDED_WITHOUT_CHARGE:
        cost = f"{credits(job.cost)} refunded"
    elif job.state is JobState.DELIVERED:
        cost = credits(job.cost)
    else:
        cost = f"{credits(job.cost)} reserved"
    line = (
        f"`{job.id}` {job.mode} · {STATE_WORDS.get(job.state, job.state.value)} · {cost} · "
        f"{timestamp(job.created_at)}"
    )
    link = _link(job)
    return f"{line} · {link}" if link else line


def _link(job: Job) -> str | None:
    if job.delivery_path is DeliveryPath.CHANNEL and job.result_message_id:
        return (
            f"[post](https://discord.com/channels/{job.guild_id}/{job.channel_id}/"
            f"{job.result_message_id})"
        )
    if job.delivery_path is DeliveryPath.LINK and job.video_url:
        return f"[video]({job.video_url})"
    if job.delivery_path is DeliveryPath.DM:
        return "sent by DM"
    return None


def history_embed(jobs: Sequence[Job], *, user_id: int, own: bool) -> discord.Embed:
    """/pika history: the member's last jobs in this server, newest first."""
    whose = "Your" if own else f"<@{user_id}>'s"
    embed = discord.Embed(title="Pika history", colour=COLOUR)
    if not jobs:
        embed.description = f"{whose} jobs: none in this server yet."
        return embed
    lines = [history_line(job) for job in jobs]
    embed.description = f"{whose} last {len(jobs)} job{'s' * (len(jobs) != 1)}:\n" + "\n".join(
        lines
    )
    embed.set_footer(text="/pika job <id> shows one job again.")
    return embed


def limits_embed(limits: ServerLimits) -> discord.Embed:
    """/pikaadmin limits list: every limit in effect in the server."""
    embed = discord.Embed(title="Pika limits in this server", colour=COLOUR)
    budget = f"{credits(limits.guild_budget)} a day" + (
        " (the bot's default)" if limits.guild_budget_is_default else ""
    )
    embed.description = (
        f"Default allowance: {credits(limits.default_allowance)} per member per day, reset at "
        f"{limits.reset_hour:02d}:00 UTC (next {timestamp(limits.resets_at)}).\n"
        f"Server budget: {budget}; {credits(limits.guild_spent)} spent today.\n"
        f"Bot-wide budget: {credits(limits.global_budget)} a day; "
        f"{credits(limits.global_spent)} spent today.\n"
        f"At most {limits.max_jobs_per_member} unfinished jobs per member; "
        f"{limits.fal_concurrency} at fal at once."
    )
    roles = _sorted_lines(limits.role_allowances, "<@&{}>")
    members = _sorted_lines(limits.member_allowances, "<@{}>")
    embed.add_field(name="Role allowances (highest wins)", value=roles or "none", inline=False)
    embed.add_field(name="Member allowances (beat roles)", value=members or "none", inline=False)
    blocked = [
        f"<@{block.user_id}>"
        + (f": {discord.utils.escape_markdown(block.reason[:100])}" if block.reason else "")
        for block in limits.blocked[:30]
    ]
    embed.add_field(name="Blocked members", value="\n".join(blocked) or "none", inline=False)
    return embed


def _sorted_lines(allowances: Mapping[int, int], mention: str) -> str:
    ordered = sorted(allowances.items(), key=lambda item: (-item[1], item[0]))[:30]
    return "\n".join(f"{mention.format(key)}: {credits(value)}" for key, value in ordered)


def usage_embed(usage: Usage, *, days: int) -> discord.Embed:
    """/pikaadmin usage: spend per day, the biggest spenders, failures and refunds."""
    embed = discord.Embed(title=f"Pika usage, last {days} day{'s' * (days != 1)}", colour=COLOUR)
    embed.description = (
        f"Spent {credits(usage.spent)} (charged for delivered videos: {usage.settled}; "
        f"refunded: {usage.refunded})."
    )
    per_day = "\n".join(
        f"{day.period}: {credits(day.spent)} over {day.jobs} job{'s' * (day.jobs != 1)}, "
        f"{day.refunded} refunded"
        for day in usage.days
    )
    embed.add_field(name="Per day", value=per_day or "no activity", inline=False)
    top = "\n".join(
        f"<@{member.user_id}>: {credits(member.spent)} ({member.jobs} job"
        f"{'s' * (member.jobs != 1)})"
        for member in usage.top_members
    )
    embed.add_field(name="Top members", value=top or "nobody yet", inline=False)
    failures = "\n".join(f"{code}: {count}" for code, count in usage.failures.items())
    embed.add_field(name="Failures (refunded)", value=failures or "none", inline=False)
    return embed


def settings_embed(settings: GuildSettings, *, default_resolution: str = "fal's") -> discord.Embed:
    """/pikaadmin settings: the server's defaults, allowed channels and audit channel."""
    embed = discord.Embed(title="Pika settings in this server", colour=COLOUR)
    for mode, models in MODELS.items():
        if len(models) > 1:
            chosen = settings.default_models.get(mode.value)
            value = chosen or f"{DEFAULT_MODEL[mode]} (the bot's default)"
            embed.add_field(name=f"Default {mode.value} model", value=value, inline=True)
    embed.add_field(
        name="Default resolution",
        value=settings.default_resolution or f"{default_resolution} default per model",
        inline=True,
    )
    embed.add_field(
        name="Audit channel",
        value=f"<#{settings.audit_channel_id}>" if settings.audit_channel_id else "none",
        inline=True,
    )
    embed.add_field(name="Channels", value=channels_line(settings), inline=False)
    embed.add_field(name="Blocked words", value=blocklist_line(settings), inline=False)
    return embed


def channels_line(settings: GuildSettings) -> str:
    """Where generation is allowed."""
    if not settings.allowed_channels:
        return "Videos can be made in every channel."
    shown = ", ".join(f"<#{channel}>" for channel in sorted(settings.allowed_channels)[:40])
    return f"Videos can only be made in {shown}."


def blocklist_line(settings: GuildSettings) -> str:
    """The words refused in prompts."""
    if not settings.blocklist:
        return "No words are blocked."
    words = ", ".join(f"`{word}`" for word in settings.blocklist[:100])
    return f"Prompts with these words are refused: {words}."[:1024]
