"""What a job looks like in Discord: the progress reply, the result post, failures, button ids."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import discord

from bot.jobs.messenger import Progress, Stage
from bot.ops.permissions import IN_CHANNEL, IN_THREAD
from bot.pika import ENDPOINTS_BY_ID, Mode
from bot.store import DeliveryPath, Job, JobState

MODE_TITLES = {
    Mode.TEXT: "Text to video",
    Mode.ANIMATE: "Animate an image",
    Mode.FRAMES: "Keyframes",
    Mode.SCENES: "Scenes",
    Mode.EFFECT: "Effect",
    Mode.SWAP: "Swap",
    Mode.ADD: "Add to a video",
}
COLOUR_WAITING = discord.Colour.blurple()
COLOUR_DONE = discord.Colour.green()
COLOUR_FAILED = discord.Colour.red()
PROMPT_SHOWN = 1000  # an embed description holds 4,096; a prompt is at most 1,500


def requester_only(user_id: int) -> discord.AllowedMentions:
    """Mentions that can ping the requester and nobody else, whatever the text contains."""
    return discord.AllowedMentions(
        everyone=False, roles=False, users=[discord.Object(user_id)], replied_user=False
    )


NO_MENTIONS = discord.AllowedMentions.none()


def _quote(text: str, limit: int = PROMPT_SHOWN) -> str:
    text = discord.utils.escape_markdown(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _request(job: Job) -> dict[str, Any]:
    return job.request


def _prompt(job: Job) -> str | None:
    prompt = _request(job).get("prompt")
    return prompt if isinstance(prompt, str) and prompt else None


def describe(job: Job) -> list[tuple[str, str]]:
    """The job's parameters as (name, value) pairs, in the order a member reads them."""
    request = _request(job)
    pairs: list[tuple[str, str]] = [("Mode", f"{job.mode} ({job.endpoint_id.split('/', 2)[-1]})")]
    for key, label in (
        ("effect", "Effect"),
        ("aspect_ratio", "Aspect ratio"),
        ("ingredients_mode", "Ingredients"),
        ("region", "Region"),
    ):
        if request.get(key):
            pairs.append((label, str(request[key])))
    duration = _duration(job)
    if duration:
        pairs.append(("Duration", f"{duration} s"))
    resolution = request.get("resolution")
    if resolution:
        pairs.append(("Resolution", str(resolution)))
    else:
        endpoint = ENDPOINTS_BY_ID.get(job.endpoint_id)
        made = endpoint.default_resolution if endpoint is not None else None
        if made:
            pairs.append(("Resolution", f"{made} (fal's default)"))
    seed = request.get("seed", job.seed)
    if seed is not None:
        pairs.append(("Seed", str(seed)))
    return pairs


def _duration(job: Job) -> int | None:
    request = _request(job)
    if job.mode == Mode.FRAMES:
        transitions = request.get("transitions") or []
        images = request.get("images") or []
        if transitions:
            return sum(int(t.get("duration", 5)) for t in transitions)
        return 5 * max(0, len(images) - 1)
    duration = request.get("duration")
    if isinstance(duration, int):
        return duration
    if job.mode in (Mode.TEXT, Mode.ANIMATE, Mode.SCENES):
        return 5
    return None


def _base_embed(job: Job, colour: discord.Colour) -> discord.Embed:
    title = MODE_TITLES.get(Mode(job.mode), job.mode) if job.mode in set(Mode) else job.mode
    embed = discord.Embed(title=f"Pika · {title}", colour=colour)
    prompt = _prompt(job)
    if prompt:
        embed.description = _quote(prompt)
    embed.set_footer(text=f"job {job.id}")
    return embed


def progress_line(progress: Progress) -> str:
    """One line saying where the job is."""
    if progress.stage is Stage.WAITING:
        if progress.position and progress.position > 1:
            return f"Waiting in the bot's queue: position {progress.position}."
        return "Waiting for a free slot at fal: next in line."
    if progress.stage is Stage.FAL_QUEUE:
        if progress.position:
            return f"Sent to fal; waiting in fal's queue: position {progress.position}."
        return "Sent to fal; waiting to start."
    if progress.stage is Stage.GENERATING:
        seconds = int(progress.elapsed_s or 0)
        return f"Generating… {seconds // 60}:{seconds % 60:02d} so far."
    return "Finished; fetching and posting the video…"


def progress_embed(
    job: Job, progress: Progress, *, missing: list[str] | None = None
) -> discord.Embed:
    """The progress reply: the request and where it is now."""
    embed = _base_embed(job, COLOUR_WAITING)
    embed.add_field(name="Status", value=progress_line(progress), inline=False)
    embed.add_field(name="Cost", value=f"{job.cost} credits (reserved)", inline=True)
    if missing:
        embed.add_field(
            name="Heads-up",
            value=f"The bot is missing {', '.join(missing)} in this channel, so the video will "
            "come by direct message (ask an admin to grant it).",
            inline=False,
        )
    return embed


# Buttons carry their job in the custom_id, so they work after a restart (JobButton below is
# their discord.ui.DynamicItem). Keep these formats stable: old messages keep them.
BUTTON_PREFIX = "pika"
# Each button's look, by its action: label, emoji and style.
BUTTON_LOOKS: dict[str, tuple[str, str | None, discord.ButtonStyle]] = {
    "cancel": ("Cancel", None, discord.ButtonStyle.secondary),
    "reroll": ("Re-roll", "🎲", discord.ButtonStyle.secondary),
    "remix": ("Remix", "✏️", discord.ButtonStyle.secondary),
    "continue": ("Continue", "⏩", discord.ButtonStyle.secondary),
    "details": ("Details", "ℹ️", discord.ButtonStyle.secondary),
    "delete": ("Delete", "🗑️", discord.ButtonStyle.danger),
}
BUTTON_ACTIONS = tuple(BUTTON_LOOKS)
RESULT_ACTIONS = ("reroll", "remix", "continue", "details", "delete")  # under a video, in order
BUTTON_TEMPLATE = re.compile(
    r"pika:(?P<action>" + "|".join(BUTTON_ACTIONS) + r"):(?P<job_id>[a-z2-7]{8})"
)


def button_id(action: str, job_id: str) -> str:
    """The custom_id of one of a job's buttons."""
    if action not in BUTTON_ACTIONS:
        raise ValueError(f"unknown button action {action!r}")
    return f"{BUTTON_PREFIX}:{action}:{job_id}"


ClickHandler = Callable[["JobButton", discord.Interaction], Awaitable[None]]


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=BUTTON_TEMPLATE):
    """One of a job's buttons; its action and job id live in the custom_id.

    Every button the bot sends is one of these, never a plain Button: discord.py keeps a
    `timeout=None` view of plain Buttons for every message it is sent with (for ever), while
    a view of dynamic items leaves nothing per message. A click is understood from the
    custom_id alone, so it also works after a restart. What a click does is the cogs' business
    (cogs.buttons sets `handler`); this module only draws the buttons.
    """

    handler: ClassVar[ClickHandler | None] = None

    def __init__(self, action: str, job_id: str) -> None:
        custom_id = button_id(action, job_id)
        label, emoji, style = BUTTON_LOOKS[action]
        super().__init__(
            discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id)
        )
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> JobButton:
        return cls(match["action"], match["job_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        handler = JobButton.handler
        if handler is not None:
            await handler(self, interaction)


def progress_view(job: Job) -> discord.ui.View:
    """The progress reply's buttons: Cancel for the requester."""
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton("cancel", job.id))
    return view


def result_view(job: Job) -> discord.ui.View:
    """The buttons under a delivered video."""
    view = discord.ui.View(timeout=None)
    for action in RESULT_ACTIONS:
        view.add_item(JobButton(action, job.id))
    return view


def missing_permissions(permissions: discord.Permissions, *, thread: bool = False) -> list[str]:
    """The permissions the bot needs to post results that these permissions lack, by name."""
    needed = IN_THREAD if thread else IN_CHANNEL
    return [name for attr, name in needed if not getattr(permissions, attr)]


def result_embed(job: Job, *, link: str | None = None) -> discord.Embed:
    """The delivered video's post: the parameters a member needs to make it again."""
    embed = _base_embed(job, COLOUR_DONE)
    for name, value in describe(job):
        embed.add_field(name=name, value=value, inline=True)
    if link:
        embed.add_field(
            name="Video",
            value=f"Too large to upload here: [open the video]({link}) (the link expires).",
            inline=False,
        )
    return embed


def result_content(job: Job) -> str:
    """The text above the video: it pings the requester (and only them)."""
    return f"<@{job.user_id}> your video is ready."


def finished_embed(job: Job, *, where: str) -> discord.Embed:
    """The progress reply once the job is done: points to where the video went."""
    embed = _base_embed(job, COLOUR_DONE)
    embed.add_field(name="Status", value=f"Done: {where}", inline=False)
    return embed


def failure_embed(job: Job, reason: str) -> discord.Embed:
    """The progress reply when the job ended without a video."""
    title = "Cancelled" if job.state is JobState.CANCELLED else "No video this time"
    embed = _base_embed(job, COLOUR_FAILED)
    embed.add_field(name=title, value=reason[:1024], inline=False)
    return embed


def job_embed(job: Job, *, details: bool = False) -> discord.Embed:
    """A job shown again (/pika job): status, parameters, cost, and where its video is.

    With `details` (the Details button), also the negative prompt, the endpoint, the timings
    and the ids at fal and of the job it was made from.
    """
    colour = {JobState.DELIVERED: COLOUR_DONE, JobState.FAILED: COLOUR_FAILED}.get(
        job.state, COLOUR_WAITING
    )
    embed = _base_embed(job, colour)
    embed.title = f"Pika job {job.id}"
    embed.add_field(name="Status", value=job.state.value, inline=True)
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>", inline=True)
    embed.add_field(name="Cost", value=f"{job.cost} credits", inline=True)
    for name, value in describe(job):
        embed.add_field(name=name, value=value, inline=True)
    embed.add_field(name="Asked", value=timestamp(job.created_at), inline=True)
    if job.error:
        embed.add_field(name="Why it ended", value=job.error[:1024], inline=False)
    where = _where(job)
    if where:
        embed.add_field(name="Video", value=where, inline=False)
    if details:
        _add_details(embed, job)
    return embed


def _add_details(embed: discord.Embed, job: Job) -> None:
    negative = _request(job).get("negative_prompt")
    if isinstance(negative, str) and negative:
        embed.add_field(name="Negative prompt", value=_quote(negative), inline=False)
    embed.add_field(name="Endpoint", value=job.endpoint_id, inline=False)
    timings = [
        ("Waited in the bot's queue", _seconds(job.created_at, job.submitted_at)),
        ("Waited at fal", _seconds(job.submitted_at, job.started_at)),
        ("Generated in", _seconds(job.started_at, job.completed_at)),
        ("Delivered", timestamp(job.finished_at) if job.finished_at else None),
    ]
    embed.add_field(
        name="Timings",
        value="\n".join(f"{label}: {value}" for label, value in timings if value) or "—",
        inline=False,
    )
    if job.fal_request_id:
        embed.add_field(name="fal request", value=f"`{job.fal_request_id}`", inline=False)
    if job.parent_job_id:
        embed.add_field(name="Made from job", value=f"`{job.parent_job_id}`", inline=True)
    embed.timestamp = datetime.fromtimestamp(job.created_at, UTC)


def _seconds(start: int | None, end: int | None) -> str | None:
    if start is None or end is None:
        return None
    return f"{end - start} s"


def _where(job: Job) -> str | None:
    path = job.delivery_path
    if path is DeliveryPath.CHANNEL and job.result_message_id:
        link = (
            f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{job.result_message_id}"
        )
        return f"[jump to the post]({link}) (also attached here while the bot keeps it)"
    if path is DeliveryPath.LINK and job.video_url:
        return f"[open the video]({job.video_url}) (fal's link expires)"
    if path is DeliveryPath.DM:
        return "sent to the member by direct message (also attached here while the bot keeps it)"
    if path is DeliveryPath.KEPT:
        return "could not be posted or sent by DM; it is attached here while the bot keeps it"
    return None


def timestamp(epoch: int | None) -> str:
    """A Discord timestamp that each reader sees in their own time zone."""
    if epoch is None:
        return "—"
    return discord.utils.format_dt(datetime.fromtimestamp(epoch, UTC), "R")
