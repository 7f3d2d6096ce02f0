"""The /pika commands and the "Animate with Pika" menu: parse, check, hand over to the jobs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.jobs import (
    CancelResult,
    InvalidRequest,
    Job,
    JobState,
    Requester,
    Upload,
    kept_video,
    precheck_attachment,
    take_inputs,
)
from bot.jobs.discord.render import (
    job_embed,
    missing_permissions,
    progress_embed,
    progress_view,
    result_view,
)
from bot.jobs.messenger import Progress, Stage
from bot.jobs.policy import JobStillRuns
from bot.pika import (
    ASPECT_RATIOS,
    DURATIONS,
    EFFECTS,
    INGREDIENTS_MODES,
    MODEL_CHOICES,
    PROMPT_MAX,
    SEED_MAX,
    Choice,
    InputRef,
    Mode,
    PikaRequest,
    build_request,
    check_options,
    endpoint_for,
    resolution_choices,
)
from cogs.admin import AdminsOnly, manages_server
from cogs.statements import history_embed, quota_embed

if TYPE_CHECKING:
    from bot.app import PikaBot

log = logging.getLogger(__name__)

Seed = app_commands.Range[int, 0, SEED_MAX]
MODAL_TIMEOUT_S = 15 * 60
Prompt = app_commands.Range[str, 1, PROMPT_MAX]


def choices(options: tuple[Choice[Any], ...]) -> list[app_commands.Choice[Any]]:
    """Discord choices from the catalogue's."""
    return [app_commands.Choice(name=c.name, value=c.value) for c in options]


DESCRIBE_COMMON = {
    "prompt": "What the video should show (at most 1,500 characters)",
    "negative_prompt": "What the video should avoid",
    "seed": "A number from 0 to 4294967295 to make a result repeatable",
    "resolution": "Video resolution",
    "duration": "Length of the video",
    "aspect_ratio": "Shape of the video",
    "model": "Pika model version",
}


def common(*names: str) -> dict[str, str]:
    """The shared option descriptions a command uses."""
    return {name: DESCRIBE_COMMON[name] for name in names}


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


async def read_attachment(bot: PikaBot, option: str, file: discord.Attachment) -> bytes:
    """The attachment's bytes from Discord's CDN (its hosts only, bounded while streaming); a
    refusal the member can act on if it fails."""
    return await bot.intake.read(option, file.url, bot.media_limits)


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


class Pika(commands.Cog):
    """Every /pika command."""

    pika = app_commands.Group(name="pika", description="Make videos with Pika", guild_only=True)

    def __init__(self, bot: PikaBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Animate with Pika", callback=self.animate_menu)
        self.menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    # -- the flow every generating command shares ----------------------------------------

    async def generate(
        self,
        interaction: discord.Interaction,
        mode: Mode,
        files: dict[str, discord.Attachment | None],
        options: dict[str, Any],
    ) -> None:
        """Check, acknowledge, validate the files, accept the job and show its progress."""
        bot = self.bot
        given = {name: file for name, file in files.items() if file is not None}
        # What the member left out takes the server's defaults (/pikaadmin settings).
        options = await bot.jobs.accounts.with_defaults(interaction.guild_id or 0, mode, options)
        # 1. Checks that need nothing but the interaction: a refusal here is a true ephemeral.
        check_options(mode, **options, **given)
        endpoint = endpoint_for(mode, options.get("model"))
        bot.jobs.check_available(endpoint.id)
        for name, file in given.items():
            precheck_attachment(
                name,
                content_type=file.content_type,
                size=file.size,
                width=file.width,
                height=file.height,
                limits=bot.media_limits,
            )
        # From here until its job is reserved the command counts as one of the member's
        # unfinished jobs, so a burst of commands is refused before anything is downloaded.
        with bot.intake.holding(interaction.user.id) as in_intake:
            # Blocks, channels, blocklist, job count and credits at a glance; the reservation
            # after the defer checks them again, atomically.
            await bot.jobs.accounts.precheck_command(
                requester_of(interaction),
                mode,
                options,
                {name: file.content_type for name, file in given.items()},
                in_intake=in_intake,
            )
            # 2. Acknowledge well inside Discord's 3 seconds; the reply is public.
            await interaction.response.defer(thinking=True)
            # 3. The files' bytes (a bounded number of commands at once), then the job.
            refs: dict[str, InputRef] = {}
            if given:
                async with bot.intake.slot():
                    for name, file in given.items():
                        # One file at a time: checked and cached before the next is read.
                        upload = Upload(name, await read_attachment(bot, name, file))
                        refs |= await take_inputs([upload], bot.cache, bot.media_limits)
                        del upload
            request = build_request(mode, **options, **refs)
        # Not counted twice: the reservation counts the job from here, and re-checks the
        # limit atomically.
        await launch(bot, interaction, request)

    # -- commands --------------------------------------------------------------------------

    @pika.command(name="text", description="Make a video from a text prompt")
    @app_commands.describe(**DESCRIBE_COMMON)
    @app_commands.choices(
        aspect_ratio=choices(ASPECT_RATIOS),
        resolution=choices(resolution_choices(Mode.TEXT)),
        duration=choices(DURATIONS),
        model=choices(MODEL_CHOICES[Mode.TEXT]),
    )
    async def text(
        self,
        interaction: discord.Interaction,
        prompt: Prompt,
        negative_prompt: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        duration: int | None = None,
        seed: Seed | None = None,
        model: str | None = None,
    ) -> None:
        await self.generate(
            interaction,
            Mode.TEXT,
            {},
            dict(
                prompt=prompt,
                negative_prompt=negative_prompt,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
                duration=duration,
                seed=seed,
                model=model,
            ),
        )

    @pika.command(name="animate", description="Bring an image to life")
    @app_commands.describe(
        image="The image to animate (PNG, JPEG or WebP)",
        **common("prompt", "negative_prompt", "seed", "resolution", "duration", "model"),
    )
    @app_commands.choices(
        resolution=choices(resolution_choices(Mode.ANIMATE)),
        duration=choices(DURATIONS),
        model=choices(MODEL_CHOICES[Mode.ANIMATE]),
    )
    async def animate(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: Prompt,
        negative_prompt: str | None = None,
        resolution: str | None = None,
        duration: int | None = None,
        seed: Seed | None = None,
        model: str | None = None,
    ) -> None:
        await self.generate(
            interaction,
            Mode.ANIMATE,
            {"image": image},
            dict(
                prompt=prompt,
                negative_prompt=negative_prompt,
                resolution=resolution,
                duration=duration,
                seed=seed,
                model=model,
            ),
        )

    @pika.command(name="frames", description="A video that moves through 2 to 5 keyframes")
    @app_commands.describe(
        image1="First keyframe",
        image2="Second keyframe",
        image3="Third keyframe",
        image4="Fourth keyframe",
        image5="Fifth keyframe",
        prompt="What happens between the keyframes",
        durations="Seconds per transition, comma separated (e.g. 5,5); at most 25 in all",
        prompts="A prompt per transition, separated by |",
        negative_prompt=DESCRIBE_COMMON["negative_prompt"],
        resolution=DESCRIBE_COMMON["resolution"],
        seed=DESCRIBE_COMMON["seed"],
    )
    @app_commands.choices(resolution=choices(resolution_choices(Mode.FRAMES)))
    async def frames(
        self,
        interaction: discord.Interaction,
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        prompt: str | None = None,
        durations: str | None = None,
        prompts: str | None = None,
        negative_prompt: str | None = None,
        resolution: str | None = None,
        seed: Seed | None = None,
    ) -> None:
        await self.generate(
            interaction,
            Mode.FRAMES,
            {
                "image1": image1,
                "image2": image2,
                "image3": image3,
                "image4": image4,
                "image5": image5,
            },
            dict(
                prompt=prompt,
                durations=durations,
                prompts=prompts,
                negative_prompt=negative_prompt,
                resolution=resolution,
                seed=seed,
            ),
        )

    @pika.command(name="scenes", description="A scene made from 1 to 6 images of its ingredients")
    @app_commands.describe(
        image1="An ingredient: a character, object or place",
        image2="Another ingredient",
        image3="Another ingredient",
        image4="Another ingredient",
        image5="Another ingredient",
        image6="Another ingredient",
        ingredients_mode="precise keeps each image as it is; creative blends them freely",
        **common("prompt", "negative_prompt", "seed", "resolution", "duration", "aspect_ratio"),
    )
    @app_commands.choices(
        ingredients_mode=choices(INGREDIENTS_MODES),
        aspect_ratio=choices(ASPECT_RATIOS),
        resolution=choices(resolution_choices(Mode.SCENES)),
        duration=choices(DURATIONS),
    )
    async def scenes(
        self,
        interaction: discord.Interaction,
        image1: discord.Attachment,
        prompt: Prompt,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        ingredients_mode: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        duration: int | None = None,
        negative_prompt: str | None = None,
        seed: Seed | None = None,
    ) -> None:
        await self.generate(
            interaction,
            Mode.SCENES,
            {
                "image1": image1,
                "image2": image2,
                "image3": image3,
                "image4": image4,
                "image5": image5,
                "image6": image6,
            },
            dict(
                prompt=prompt,
                ingredients_mode=ingredients_mode,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
                duration=duration,
                negative_prompt=negative_prompt,
                seed=seed,
            ),
        )

    @pika.command(
        name="effect", description="Apply a Pikaffect (melt, explode, inflate…) to an image"
    )
    @app_commands.describe(
        image="The image to apply the effect to",
        effect="The effect",
        prompt="Extra guidance for the effect (optional)",
        negative_prompt=DESCRIBE_COMMON["negative_prompt"],
        seed=DESCRIBE_COMMON["seed"],
    )
    @app_commands.choices(effect=choices(EFFECTS))
    async def effect(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        effect: str,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        seed: Seed | None = None,
    ) -> None:
        await self.generate(
            interaction,
            Mode.EFFECT,
            {"image": image},
            dict(effect=effect, prompt=prompt, negative_prompt=negative_prompt, seed=seed),
        )

    @pika.command(name="swap", description="Replace something in a video with an image or a prompt")
    @app_commands.describe(
        video="The video (MP4, MOV or WebM, at most 30 s)",
        image="What to put in (an image)",
        region="What to replace, e.g. 'the red car'",
        prompt="What to put in, in words",
        negative_prompt=DESCRIBE_COMMON["negative_prompt"],
        seed=DESCRIBE_COMMON["seed"],
    )
    async def swap(
        self,
        interaction: discord.Interaction,
        video: discord.Attachment,
        image: discord.Attachment | None = None,
        region: str | None = None,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        seed: Seed | None = None,
    ) -> None:
        await self.generate(
            interaction,
            Mode.SWAP,
            {"video": video, "image": image},
            dict(region=region, prompt=prompt, negative_prompt=negative_prompt, seed=seed),
        )

    @pika.command(name="add", description="Add what an image shows into a video")
    @app_commands.describe(
        video="The video (MP4, MOV or WebM, at most 30 s)",
        image="What to add",
        prompt="How to add it",
        negative_prompt=DESCRIBE_COMMON["negative_prompt"],
        seed=DESCRIBE_COMMON["seed"],
    )
    async def add(
        self,
        interaction: discord.Interaction,
        video: discord.Attachment,
        image: discord.Attachment,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        seed: Seed | None = None,
    ) -> None:
        await self.generate(
            interaction,
            Mode.ADD,
            {"video": video, "image": image},
            dict(prompt=prompt, negative_prompt=negative_prompt, seed=seed),
        )

    @pika.command(name="job", description="Show one of your jobs again")
    @app_commands.describe(id="The job id (shown under every Pika post)")
    async def job(self, interaction: discord.Interaction, id: str) -> None:
        job = await self.bot.jobs.get(id.strip().lower())
        user = interaction.user
        is_admin = isinstance(user, discord.Member) and (
            user.guild_permissions.manage_messages or user.guild_permissions.manage_guild
        )
        if (
            job is None
            or job.guild_id != interaction.guild_id
            or (job.user_id != user.id and not is_admin)
        ):
            raise InvalidRequest(
                f"There is no job `{id[:20]}` of yours in this server. Job ids are the 8 "
                "letters and digits under each Pika post; /pika history lists yours."
            )
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

    # -- credits and jobs -------------------------------------------------------------------

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
        jobs = await self.bot.jobs.accounts.history(interaction.guild_id or 0, target.id)
        await interaction.response.send_message(
            embed=history_embed(jobs, user_id=target.id, own=target.id == interaction.user.id),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @pika.command(name="cancel", description="Cancel a waiting or running job")
    @app_commands.describe(id="The job id (default: your newest unfinished job)")
    async def cancel(self, interaction: discord.Interaction, id: str | None = None) -> None:
        from cogs.buttons import CANCEL_REPLIES  # cogs.buttons imports this module

        user, guild_id = interaction.user, interaction.guild_id or 0
        if id is None:
            job = await self.bot.jobs.accounts.newest_unfinished(guild_id, user.id)
            if job is None:
                raise InvalidRequest(
                    "You have no job waiting or running in this server; /pika history lists "
                    "your jobs."
                )
        else:
            job = await self.bot.jobs.get(id.strip().lower())
            if (
                job is None
                or job.guild_id != guild_id
                or (job.user_id != user.id and not manages_server(interaction))
            ):
                raise InvalidRequest(
                    f"There is no job `{id[:20]}` of yours in this server. Job ids are the 8 "
                    "letters and digits under each Pika post; /pika history lists yours."
                )
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

    # -- the message menu --------------------------------------------------------------------

    async def animate_menu(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        image = next(
            (a for a in message.attachments if (a.content_type or "").startswith("image/")), None
        )
        if image is None:
            raise InvalidRequest(
                "That message has no image attached; Animate with Pika needs a PNG, JPEG or "
                "WebP image in the message."
            )
        await interaction.response.send_modal(AnimateModal(self, image))


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


class AnimateModal(discord.ui.Modal, title="Animate with Pika"):
    """Asks for the prompt of an "Animate with Pika" job."""

    prompt: discord.ui.TextInput[AnimateModal] = discord.ui.TextInput(
        label="Prompt",
        style=discord.TextStyle.paragraph,
        placeholder="What should happen in the video?",
        max_length=PROMPT_MAX,
    )

    def __init__(self, cog: Pika, image: discord.Attachment) -> None:
        # A modal left open is kept by discord.py until it times out: not for ever.
        super().__init__(timeout=MODAL_TIMEOUT_S)
        self.cog = cog
        self.image = image

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.cog.generate(
            interaction, Mode.ANIMATE, {"image": self.image}, {"prompt": self.prompt.value}
        )

    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction, error: Exception, /
    ) -> None:
        await self.cog.bot.report_error(interaction, error)


async def setup(bot: commands.Bot) -> None:
    from bot.app import PikaBot

    assert isinstance(bot, PikaBot)
    await bot.add_cog(Pika(bot))
