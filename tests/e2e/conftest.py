"""The whole bot for end-to-end tests: real discord.py and PikaBot against the fake Discord and the
fal emulator, with its own SQLite file and data folder."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import av
import httpx
import pytest
from PIL import Image, ImageDraw

from bot.app import PikaBot
from bot.config import Settings, load_settings
from bot.emulator import FalEmulator
from bot.fakediscord import FakeDiscord, MovableClock
from bot.fakediscord.records import StoredMessage
from bot.fal import FalClient, FalTimeouts, RetryPolicy
from bot.store import Job, Store

DISCORD_TOKEN = "e2e-discord-token-Zm9vYmFyLnNlY3JldA"
FAL_KEY = "e2e-fal-key-c2VjcmV0LWZhbA"

T = TypeVar("T")


def png(width: int = 512, height: int = 512, colour: str = "orange") -> bytes:
    """A small real PNG with something drawn on it."""
    image = Image.new("RGB", (width, height), colour)
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, width // 2, height // 2), fill="navy")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def mp4(seconds: float = 1.0, width: int = 320, height: int = 240, fps: int = 8) -> bytes:
    """A small real H.264 MP4."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for n in range(int(seconds * fps)):
            frame = av.VideoFrame.from_image(
                Image.new("RGB", (width, height), (n * 20 % 255, 80, 160))
            )
            frame.pts = n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


@dataclass
class World:
    """Everything one end-to-end test drives."""

    fake: FakeDiscord
    fal: FalEmulator
    tmp: Path
    clock: MovableClock
    overrides: dict[str, Any] = field(default_factory=dict)
    bot: PikaBot | None = None
    store: Store | None = None
    _runner: asyncio.Task[None] | None = None
    _http: httpx.AsyncClient | None = None
    _fal_client: FalClient | None = None

    @property
    def settings(self) -> Settings:
        return load_settings(
            discord_token=DISCORD_TOKEN,
            fal_key=FAL_KEY,
            database=self.tmp / "pikabot.sqlite3",
            data_dir=self.tmp / "data",
            fal_queue_url=self.fal.base_url,
            fal_rest_url=self.fal.base_url,
            discord_api_url=self.fake.api_url,
            discord_gateway_url=self.fake.gateway_url,
            progress_interval=1.0,
            **self.overrides,
        )

    async def start(self) -> PikaBot:
        """Start (or restart) the bot on the same database and data folder."""
        settings = self.settings
        self.store = await Store.open(settings.database)
        self._http = httpx.AsyncClient(timeout=10)
        self._fal_client = FalClient(
            settings.fal_queue_url,
            settings.fal_rest_url,
            FAL_KEY,
            http=self._http,
            timeouts=FalTimeouts(connect=2, read=5, write=5, pool=5, stream_read=5, upload=10),
            retry=RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.2),
        )
        bot = PikaBot(
            settings=settings,
            store=self.store,
            fal=self._fal_client,
            http=self._http,
            guild_ready_timeout=0.1,
        )
        self.bot = bot
        self._runner = asyncio.create_task(bot.start(DISCORD_TOKEN))
        ready = asyncio.ensure_future(bot.wait_until_ready())
        done, _ = await asyncio.wait(
            {ready, self._runner}, timeout=15, return_when=asyncio.FIRST_COMPLETED
        )
        if self._runner in done:
            ready.cancel()
            self._runner.result()
            raise AssertionError("the bot stopped before it was ready")
        assert ready in done, "the bot was not ready within 15 s"
        return bot

    async def stop(self) -> None:
        """Stop the bot as an operator would; jobs stay as they are in the database."""
        if self.bot is not None:
            await self.bot.close()
        if self._runner is not None:
            await asyncio.wait_for(self._runner, 10)
        if self._http is not None:
            await self._http.aclose()
        if self.store is not None:
            await self.store.close()
        self.bot = self.store = self._runner = self._http = self._fal_client = None

    async def command(self, name: str, options: dict[str, Any] | None = None, **kw: Any) -> Any:
        """Run a slash command as the default member in the default channel."""
        user = kw.pop("user", self.fake.member)
        channel = kw.pop("channel", self.fake.channel)
        return await self.fake.command(user, channel, name, options or {}, **kw)

    def attach(
        self, data: bytes, filename: str, content_type: str | None = None, **kw: Any
    ) -> dict[str, Any]:
        return self.fake.attachment(data, filename, content_type, **kw)

    def posts(self, channel: Any = None) -> list[StoredMessage]:
        """Messages in the channel that carry a file (delivered videos)."""
        return [
            m
            for m in self.fake.messages(channel or self.fake.channel, include_deleted=False)
            if m.attachments
        ]

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 20) -> T:  # noqa: ASYNC109
        return await self.fake.wait_for(predicate, timeout=timeout)

    async def job(self, job_id: str) -> Job:
        """The job once this bot has nothing more to do for it."""
        assert self.bot is not None
        job = await asyncio.wait_for(self.bot.jobs.wait_ended(job_id), 20)
        assert job is not None
        return job

    async def jobs(self) -> list[Job]:
        assert self.store is not None
        rows = await self.store.recent_jobs(self.fake.member.id, limit=100)
        return rows


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = MovableClock()
    async with (
        FakeDiscord(validate=True, clock=clock, token=DISCORD_TOKEN) as fake,
        FalEmulator(key=FAL_KEY) as fal,
    ):
        with fake.patch_discord_py(share_clock=True):
            world = World(fake=fake, fal=fal, tmp=tmp_path, clock=clock)
            await world.start()
            try:
                yield world
            finally:
                await world.stop()
    fake.assert_valid()
