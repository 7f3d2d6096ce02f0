"""A bot process the benchmarks start: PikaBot, a minimal defer-only bot, or a bare uploader.

`python -m bench.child MODE --stats FILE`. The settings come from the environment as for
`pikabot run`. SIGUSR1 starts the measured window (loop lag, CPU); SIGTERM closes the bot and
writes that window's figures to FILE as JSON. The uploader reads one JSON line per upload on
stdin ({"url", "channel_id"}) and answers with the moment it started on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import discord
import httpx
from discord import app_commands

from bench.stats import LagProbe, Usage

# Figures a mode adds to the window's (PikaBot: what discord.py's view store holds at the end).
EXTRA: dict[str, Any] = {}


def view_store_figures(bot: discord.Client) -> dict[str, int]:
    """What discord.py keeps for components: views per message, dispatch entries, modals."""
    store: Any = bot._connection._view_store
    return {
        "message_views": len(store._synced_message_views),
        "dispatch_entries": sum(len(items) for items in store._views.values()),
        "dynamic_item_classes": len(store._dynamic_items),
        "modals": len(store._modals),
    }


class MinimalBot(discord.Client):
    """The acknowledgement baseline: discord.py with one /pika text command that only defers."""

    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(intents=intents)
        self.tree = app_commands.CommandTree(self)
        group = app_commands.Group(name="pika", description="Make videos with Pika")

        @group.command(name="text", description="Make a video from a text prompt")
        async def text(interaction: discord.Interaction, prompt: str) -> None:
            await interaction.response.defer(thinking=True)

        self.tree.add_command(group)

    async def setup_hook(self) -> None:
        await self.tree.sync()


async def _run_pikabot(stop: asyncio.Event) -> None:
    # `pikabot run`'s own wiring (store, HTTP client and its limits, fal client), so that the
    # figures are those of what operators run, not of a copy that could drift from it.
    from bot.__main__ import _bot
    from bot.config import load_settings
    from bot.ops.logs import setup_logging

    settings = load_settings()
    assert settings.discord_token is not None
    assert settings.fal_key is not None
    token = settings.discord_token.get_secret_value()
    setup_logging(level=settings.log_level, secrets=[token, settings.fal_key.get_secret_value()])
    async with _bot(settings) as bot:
        # Read before the bot closes: closing unloads the extensions (and their dynamic items).
        await _serve(
            bot, token, stop, before_close=lambda: EXTRA.update(views=view_store_figures(bot))
        )


async def _run_minimal(stop: asyncio.Event) -> None:
    from bot.app import point_discord_at
    from bot.config import load_settings

    settings = load_settings()
    assert settings.discord_token is not None
    logging.basicConfig(level=logging.WARNING)
    point_discord_at(settings.discord_api_url, settings.discord_gateway_url)
    bot = MinimalBot()
    async with bot:
        await _serve(bot, settings.discord_token.get_secret_value(), stop)


async def _serve(
    bot: discord.Client,
    token: str,
    stop: asyncio.Event,
    *,
    before_close: Callable[[], None] | None = None,
) -> None:
    runner = asyncio.create_task(bot.start(token))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if before_close is not None:
        before_close()
    await bot.close()
    await runner


async def _run_uploader(stop: asyncio.Event) -> None:
    """Download a URL with httpx and post it with discord.py, nothing else."""
    from bot.app import point_discord_at
    from bot.config import load_settings

    settings = load_settings()
    assert settings.discord_token is not None
    point_discord_at(settings.discord_api_url, settings.discord_gateway_url)
    client = discord.Client(intents=discord.Intents.none())
    async with client, httpx.AsyncClient(timeout=60) as http:
        # REST only: a second gateway session would take the interactions from the bot.
        await client.login(settings.discord_token.get_secret_value())
        print(json.dumps({"ready": True}), flush=True)
        while not stop.is_set():
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            order: dict[str, Any] = json.loads(line)
            started = time.monotonic()
            response = await http.get(order["url"])
            response.raise_for_status()
            channel = client.get_partial_messageable(int(order["channel_id"]))
            await channel.send(file=discord.File(io.BytesIO(response.content), "video.mp4"))
            print(json.dumps({"started": started}), flush=True)


async def _main(mode: str, stats_path: Path) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    probe = LagProbe()
    probe.start()
    mark = Usage.now()

    end: Usage | None = None
    lag: dict[str, float] = {}

    def start_window() -> None:
        nonlocal mark
        probe.mark()
        mark = Usage.now()

    def end_window() -> None:
        # The window ends at the signal: closing the bot afterwards is not part of it.
        nonlocal end, lag
        end, lag = Usage.now(), probe.summary()
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, end_window)
    loop.add_signal_handler(signal.SIGUSR1, start_window)
    run = {"pikabot": _run_pikabot, "minimal": _run_minimal, "uploader": _run_uploader}[mode]
    try:
        await run(stop)
    finally:
        await probe.stop()
        if end is None:
            end, lag = Usage.now(), probe.summary()
        figures = {
            "lag": lag,
            "cpu_s": end.cpu_s - mark.cpu_s,
            "wall_s": end.wall - mark.wall,
            "maxrss_mb": Usage.now().maxrss_mb,
            **EXTRA,
        }
        # The loop is done with everything else by now: a blocking write is harmless.
        stats_path.write_text(json.dumps(figures))  # noqa: ASYNC240


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("mode", choices=["pikabot", "minimal", "uploader"])
    parser.add_argument("--stats", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_main(args.mode, args.stats))


if __name__ == "__main__":
    main()
