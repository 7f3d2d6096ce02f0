"""The benchmark stage: the fake Discord and the fal emulator in this process, a bot in another."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bot.emulator import FalEmulator, PreviewSettings
from bot.sandbox.fakediscord import Channel, FakeDiscord, FakeInteraction, StoredMessage, User
from bot.sandbox.fakediscord.commands import CHAT_INPUT
from bot.sandbox.fakediscord.errors import CommandMismatch

REPO = Path(__file__).resolve().parent.parent
DISCORD_TOKEN = "bench-discord-token-Zm9vYmFyLnNlY3JldA"
FAL_KEY = "bench-fal-key-c2VjcmV0LWZhbA"
# Tiny previews: rendering must not compete with the bot for the CPU being measured.
TINY_PREVIEW = PreviewSettings(short_side=32, fps=4, seconds=0.5)
# Settings every benchmark run of PikaBot starts with: budgets out of the way of the figures.
OPEN_BUDGETS = {
    "daily_allowance": 1_000_000,
    "guild_daily_budget": 100_000_000,
    "global_daily_budget": 100_000_000,
}


def wall_to_monotonic(at: datetime) -> float:
    """A wall-clock record of the fake as time.monotonic(), the clock every process shares."""
    return at.timestamp() - (time.time() - time.monotonic())


@dataclass
class Stage:
    """One fake Discord with members and channels, one fal emulator, a scratch folder."""

    fake: FakeDiscord
    fal: FalEmulator
    tmp: Path
    members: list[User] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    sent: dict[int, float] = field(default_factory=dict)

    def bot_env(self, **settings: object) -> dict[str, str]:
        """The environment of a bot process pointed at this stage (PIKABOT_ names lower-case)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIKABOT_")}
        values: dict[str, object] = {
            "database": self.tmp / "pikabot.sqlite3",
            "data_dir": self.tmp / "data",
            "fal_queue_url": self.fal.base_url,
            "fal_rest_url": self.fal.base_url,
            "discord_api_url": self.fake.api_url,
            "discord_gateway_url": self.fake.gateway_url,
            **settings,
        }
        env.update({f"PIKABOT_{k.upper()}": str(v) for k, v in values.items()})
        env.update(DISCORD_TOKEN=DISCORD_TOKEN, FAL_KEY=FAL_KEY, PYTHONPATH=str(REPO))
        return env

    async def command(
        self, user: User, channel: Channel, name: str, options: Mapping[str, Any]
    ) -> FakeInteraction:
        """Invoke a slash command; note when its INTERACTION_CREATE went out (see sent_at)."""
        interaction = await self.fake.command(user, channel, name, dict(options))
        self.sent[interaction.id] = self._frame_sent_at(interaction)
        return interaction

    def ack_latency(self, interaction: FakeInteraction) -> float | None:
        """Seconds from INTERACTION_CREATE sent to the callback received; None if unanswered."""
        response = interaction.response
        if response is None:
            return None
        return wall_to_monotonic(response.at) - self.sent[interaction.id]

    def _frame_sent_at(self, interaction: FakeInteraction) -> float:
        wanted = str(interaction.id)
        for frame in reversed(self.fake.frames[-50:]):
            if (
                frame.direction == "out"
                and frame.t == "INTERACTION_CREATE"
                and isinstance(frame.data, dict)
                and frame.data.get("id") == wanted
            ):
                return wall_to_monotonic(frame.at)
        return wall_to_monotonic(interaction.created_at)

    def videos(self) -> list[StoredMessage]:
        """Every message from the bot that carries a file, in every channel."""
        found: list[StoredMessage] = []
        for channel in self.channels:
            found += [
                m
                for m in self.fake.messages(channel, include_deleted=False)
                if m.attachments and m.author_id == self.fake.bot_user.id
            ]
        return found


@contextlib.asynccontextmanager
async def stage(
    *,
    members: int = 1,
    channels: int = 1,
    preview: PreviewSettings = TINY_PREVIEW,
    max_records: int | None = None,
) -> AsyncIterator[Stage]:
    """A fresh fake Discord and fal emulator on 127.0.0.1 with `members` and `channels`.

    OpenAPI validation is off: it is the fake's own cost and would be counted in every figure.
    """
    with tempfile.TemporaryDirectory(prefix="pikabot-bench-") as tmp:
        async with (
            FakeDiscord(token=DISCORD_TOKEN, max_records=max_records) as fake,
            FalEmulator(key=FAL_KEY, preview=preview, data_dir=Path(tmp)) as fal,
        ):
            people = [fake.member]
            for n in range(1, members):
                people.append(await fake.add_member(f"member{n}"))
            rooms = [fake.channel]
            for n in range(1, channels):
                rooms.append(await fake.add_text_channel(f"room{n}"))
            yield Stage(fake=fake, fal=fal, tmp=Path(tmp), members=people, channels=rooms)


@dataclass
class BotProcess:
    """A bot in its own process (bench.child); its log goes to a file in the stage folder."""

    mode: str
    process: asyncio.subprocess.Process
    stats_path: Path
    log_path: Path
    _log: IO[bytes]

    def start_window(self) -> None:
        """Start the measured window (loop lag and CPU count from here)."""
        self.process.send_signal(signal.SIGUSR1)

    async def stop(self) -> dict[str, Any]:
        """End the window, close the bot and return its figures (lag, cpu_s, maxrss_mb)."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 60)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._log.close()
        if not self.stats_path.exists():
            raise RuntimeError(f"the {self.mode} process wrote no figures; see {self.log_path}")
        figures: dict[str, Any] = json.loads(self.stats_path.read_text())
        return figures

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def spawn(
    on: Stage, mode: str, *, pipes: bool = False, settings: Mapping[str, object] | None = None
) -> BotProcess:
    """Start a bot process on the stage; for the bots, wait until its commands are synced."""
    name = f"{mode}-{time.monotonic_ns()}"
    stats_path = on.tmp / f"{name}.json"
    log_path = on.tmp / f"{name}.log"
    log = log_path.open("wb")
    pipe = asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.child",
        mode,
        "--stats",
        str(stats_path),
        env=on.bot_env(**(settings or {})),
        cwd=REPO,
        stdin=pipe,
        stdout=pipe,
        stderr=log,
    )
    bot = BotProcess(mode, process, stats_path, log_path, log)
    if mode == "uploader":
        return bot
    try:
        await on.fake.wait_until_ready(timeout=60)
        await on.fake.wait_for(lambda: _synced(on.fake), timeout=60)
    except TimeoutError:
        await bot.stop()
        raise RuntimeError(f"the {mode} bot did not start:\n{bot.log_tail()}") from None
    return bot


def _synced(fake: FakeDiscord) -> bool:
    try:
        fake.commands.find("pika", CHAT_INPUT, fake.guild.id)
    except CommandMismatch:
        return False
    return True


async def at_rate(count: int, seconds: float, make: Any) -> list[Any]:
    """Call `make(i)` for i in range(count), evenly spread over `seconds`; gather the results."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for i in range(count):
        delay = start + seconds * i / count - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(make(i)))
    return list(await asyncio.gather(*tasks))
