"""The /pika commands that make a video, and the "Animate with Pika" menu: parse the options,
prepare the job in one call, acknowledge, hand the request over."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.jobs import InvalidRequest
from bot.jobs.prepare import Attachment, prepare
from bot.pika import (
    ASPECT_RATIOS,
    DURATIONS,
    EFFECTS,
    INGREDIENTS_MODES,
    MODEL_CHOICES,
    PROMPT_MAX,
    SEED_MAX,
    Choice,
    Mode,
    resolution_choices,
)
from cogs.interactions import MODAL_TIMEOUT_S, launch, requester_of

if TYPE_CHECKING:
    from bot.app import PikaBot

Seed = app_commands.Range[int, 0, SEED_MAX]
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


def attachment(option: str, file: discord.Attachment) -> Attachment:
    """What Discord says of a file, before its bytes are read."""
    return Attachment(
        option=option,
        url=file.url,
        content_type=file.content_type,
        size=file.size,
        width=file.width,
        height=file.height,
    )


class Generating(commands.Cog):
    """The /pika group and its commands that make a video, with the message menu's flow.

    cogs.members adds the other commands to this group, after these (it imports this module),
    so they are synced in the same order as when one class held them all; cogs.pika is the
    cog made of both."""

    bot: PikaBot
    pika = app_commands.Group(name="pika", description="Make videos with Pika", guild_only=True)

    # -- the flow every generating command shares ----------------------------------------

    async def generate(
        self,
        interaction: discord.Interaction,
        mode: Mode,
        files: dict[str, discord.Attachment | None],
        options: dict[str, Any],
    ) -> None:
        """Check, acknowledge, read the files, accept the job and show its progress."""
        given = [attachment(name, file) for name, file in files.items() if file is not None]
        async with prepare(self.bot, requester_of(interaction), mode, options, given) as order:
            # Acknowledge well inside Discord's 3 seconds; the reply is public.
            await interaction.response.defer(thinking=True)
            request = await order.request()
        # Not counted twice: the reservation counts the job from here, and re-checks the
        # limit atomically.
        await launch(self.bot, interaction, request)

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


class AnimateModal(discord.ui.Modal, title="Animate with Pika"):
    """Asks for the prompt of an "Animate with Pika" job."""

    prompt: discord.ui.TextInput[AnimateModal] = discord.ui.TextInput(
        label="Prompt",
        style=discord.TextStyle.paragraph,
        placeholder="What should happen in the video?",
        max_length=PROMPT_MAX,
    )

    def __init__(self, cog: Generating, image: discord.Attachment) -> None:
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
