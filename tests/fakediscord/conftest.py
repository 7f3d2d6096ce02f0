"""A minimal real discord.py bot and a running fake Discord for the fake's own tests."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Literal

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.sandbox.fakediscord import FakeDiscord, MovableClock
from tests.fakediscord.openapi import discord_body_check
from tests.secrets import FAKE_DISCORD_TOKEN

TOKEN = FAKE_DISCORD_TOKEN


class DescribeModal(discord.ui.Modal, title="Describe"):
    """Asks for a prompt and answers ephemerally with it."""

    prompt: discord.ui.TextInput[DescribeModal] = discord.ui.TextInput(
        label="Prompt", custom_id="prompt", max_length=200
    )
    frames: discord.ui.Label[DescribeModal] = discord.ui.Label(
        text="Frames", component=discord.ui.FileUpload(custom_id="frames", required=False)
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert isinstance(self.frames.component, discord.ui.FileUpload)
        sizes = [a.size for a in self.frames.component.values]
        await interaction.response.send_message(
            f"described: {self.prompt.value} with files {sizes}", ephemeral=True
        )


class ResultView(discord.ui.View):
    """Persistent buttons on a result message."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Again", custom_id="demo:again")
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button[ResultView]):
        await interaction.response.edit_message(content="again!")

    @discord.ui.button(label="Describe", custom_id="demo:describe")
    async def describe(
        self, interaction: discord.Interaction, button: discord.ui.Button[ResultView]
    ):
        await interaction.response.send_modal(DescribeModal())


class DemoBot(commands.Bot):
    """One slash command group with an attachment option, a button view, a modal, a menu."""

    def __init__(self, guild_id: int) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            guild_ready_timeout=0.1,
        )
        self.guild_id = guild_id
        self.errors: asyncio.Queue[BaseException] = asyncio.Queue()
        self.release = asyncio.Event()
        self.expired_seen: list[bool] = []

    async def setup_hook(self) -> None:
        guild = discord.Object(self.guild_id)
        self.tree.add_command(_pika_group(self), guild=guild)
        self.tree.add_command(
            app_commands.ContextMenu(name="Animate with Pika", callback=_animate), guild=guild
        )
        self.add_view(ResultView())
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]

    async def _on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        original = getattr(error, "original", error)
        await self.errors.put(original)


def _pika_group(bot: DemoBot) -> app_commands.Group:
    group = app_commands.Group(name="pika", description="Make videos with Pika")

    @group.command(name="text", description="Make a video from a prompt")
    @app_commands.describe(prompt="What to make", image="A first frame", style="The mood")
    async def text(
        interaction: discord.Interaction,
        prompt: str,
        image: discord.Attachment | None = None,
        style: Literal["calm", "wild"] = "calm",
    ) -> None:
        await interaction.response.defer(thinking=True)
        data = await image.read() if image else b"no image"
        await interaction.followup.send(
            f"made {prompt} ({style})",
            file=discord.File(io.BytesIO(data), "result.png"),
            view=ResultView(),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        await interaction.edit_original_response(content=f"done: {prompt}")

    @group.command(name="secret", description="Defer ephemerally, then follow up twice")
    async def secret(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send("first (asked public)", ephemeral=False)
        await interaction.followup.send("second (asked public)", ephemeral=False)

    @group.command(name="later", description="Defer, wait for the test, then follow up")
    async def later(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await bot.release.wait()
        bot.expired_seen.append(interaction.is_expired())
        await interaction.followup.send("late result")

    return group


async def _animate(interaction: discord.Interaction, message: discord.Message) -> None:
    await interaction.response.send_message(
        f"animating {len(message.attachments)} attachment(s) from {message.author.name}",
        ephemeral=True,
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def fake(clock: MovableClock) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(check_body=discord_body_check(), clock=clock, token=TOKEN) as fake:
        with fake.patch_discord_py():
            yield fake
    # Every body the bot sent in any test must match Discord's OpenAPI schema.
    fake.assert_valid()


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[DemoBot]:
    demo = DemoBot(fake.guild.id)
    runner = asyncio.create_task(demo.start(TOKEN))
    try:
        await _ready_or_crashed(demo, runner)
        await demo.tree.sync(guild=discord.Object(fake.guild.id))
        yield demo
    finally:
        await demo.close()
        await asyncio.wait_for(runner, 10)


async def _ready_or_crashed(demo: commands.Bot, runner: asyncio.Task[None]) -> None:
    """Wait for READY, but surface a login/gateway crash at once instead of timing out."""
    ready = asyncio.ensure_future(demo.wait_until_ready())
    done, _ = await asyncio.wait({ready, runner}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if runner in done:
        ready.cancel()
        runner.result()
        raise AssertionError("the bot stopped before it was ready")
    if ready not in done:
        ready.cancel()
        raise AssertionError("the bot was not ready within 10 s")
