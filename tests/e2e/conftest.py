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
from bot.emulator import FalEmulator, Submission
from bot.fal import FalClient, FalTimeouts, RetryPolicy
from bot.sandbox.fakediscord import FakeDiscord, MovableClock
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from bot.services import build_services
from bot.store import Job, LedgerEntry, StoreBackend, open_store
from tests.fakediscord.openapi import discord_body_check
from tests.postgres import PostgresServer, postgres_server, pytest_runtest_makereport
from tests.secrets import E2E

DISCORD_TOKEN, FAL_KEY = E2E
__all__ = ["postgres_server", "pytest_runtest_makereport"]

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


def job_id_of(post: StoredMessage) -> str:
    """The job id a Pika post names in its embed footer."""
    footer = post.embeds[0]["footer"]["text"]
    assert footer.startswith("job ")
    return str(footer.removeprefix("job "))


async def fal_output(url: str | None) -> bytes:
    """The bytes behind a URL the emulator handed out (a result video, a stored upload)."""
    assert url is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.content


def decodes(data: bytes) -> int:
    """How many video frames an MP4 holds (raises if it is not one)."""
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


def embed_text(message: StoredMessage) -> str:
    """Everything a member reads in a message's embeds, as one string."""
    parts: list[str] = []
    for embed in message.embeds:
        parts += [str(embed.get("title", "")), str(embed.get("description", ""))]
        for item in embed.get("fields", []):
            parts += [str(item["name"]), str(item["value"])]
    return "\n".join(parts)


class _Submissions(list[Submission]):
    """The emulator's list of submits, which also wakes tests waiting for the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.grew = asyncio.Event()

    def append(self, item: Submission) -> None:
        super().append(item)
        self.grew.set()


@dataclass(frozen=True)
class Refused:
    """What a member was told when a command was refused, and whether it came before the defer."""

    text: str
    before_defer: bool


@dataclass
class World:
    """Everything one end-to-end test drives."""

    fake: FakeDiscord
    fal: FalEmulator
    tmp: Path
    clock: MovableClock
    overrides: dict[str, Any] = field(default_factory=dict)
    # Short timeouts and fast retries, so fault tests run in well under a second per retry.
    fal_timeouts: FalTimeouts = field(
        default_factory=lambda: FalTimeouts(
            connect=2, read=5, write=5, pool=5, stream_read=5, upload=10
        )
    )
    fal_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.2)
    )
    # None: SQLite in the test's folder; else a PostgreSQL URL (see the world fixture).
    database_url: str | None = None
    bot: PikaBot | None = None
    store: StoreBackend | None = None
    _runner: asyncio.Task[None] | None = None
    _http: httpx.AsyncClient | None = None
    _fal_client: FalClient | None = None

    @property
    def settings(self) -> Settings:
        values: dict[str, Any] = {"progress_interval": 1.0, **self.overrides}
        return load_settings(
            discord_token=DISCORD_TOKEN,
            fal_key=FAL_KEY,
            database=self.database_url or self.tmp / "pikabot.sqlite3",
            data_dir=self.tmp / "data",
            fal_queue_url=self.fal.base_url,
            fal_rest_url=self.fal.base_url,
            discord_api_url=self.fake.api_url,
            discord_gateway_url=self.fake.gateway_url,
            **values,
        )

    def epoch(self) -> float:
        """Now in epoch seconds on the clock the fake Discord, discord.py and the bot share."""
        return self.clock().timestamp()

    async def start(self) -> PikaBot:
        """Start (or restart) the bot on the same database and data folder."""
        settings = self.settings
        self.store = await open_store(settings, clock=self.epoch)
        self._http = httpx.AsyncClient(timeout=10)
        self._fal_client = FalClient(
            settings.fal_queue_url,
            settings.fal_rest_url,
            FAL_KEY,
            http=self._http,
            timeouts=self.fal_timeouts,
            retry=self.fal_retry,
        )
        services = build_services(
            settings, store=self.store, fal=self._fal_client, http=self._http, clock=self.epoch
        )
        bot = PikaBot(services, guild_ready_timeout=0.1)
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
        """The bot's messages in the channel that carry a file (delivered videos)."""
        return [
            m
            for m in self.fake.messages(channel or self.fake.channel, include_deleted=False)
            if m.attachments and m.author_id == self.fake.bot_user.id
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
        rows = await self.store.jobs.recent(self.fake.member.id, limit=100)
        return rows

    async def ledger(self) -> list[LedgerEntry]:
        """The default member's ledger rows in the default server, oldest first."""
        assert self.store is not None
        return await self.store.ledger.for_member(self.fake.guild.id, self.fake.member.id)

    def bot_messages(self, channel: Any = None) -> list[StoredMessage]:
        """Every message the bot sent in the channel: ephemeral and deleted ones too."""
        return [
            m
            for m in self.fake.messages(channel or self.fake.channel)
            if m.author_id == self.fake.bot_user.id
        ]

    async def submission(self, number: int = 1) -> Submission:
        """The `number`th submit fal received (1 = first), once it has arrived."""
        submissions = self.fal.submissions
        assert isinstance(submissions, _Submissions)
        async with asyncio.timeout(20):
            while len(submissions) < number:
                submissions.grew.clear()
                await submissions.grew.wait()
        return submissions[number - 1]

    async def progress_says(self, interaction: FakeInteraction, words: str) -> StoredMessage:
        """The command's reply, once the bot has edited it to say `words`."""

        def says() -> StoredMessage | None:
            message = interaction.original
            return message if message is not None and words in embed_text(message) else None

        return await self.wait_for(says)

    async def refusal(self, interaction: FakeInteraction) -> Refused:
        """The refusal a member got, checked to be seen by them alone.

        Before the defer it must be a true ephemeral reply; after a (public) defer, the deferred
        reply must be gone and the refusal an ephemeral followup.
        """

        def answered() -> bool:
            response = interaction.response
            return response is not None and (response.type != 5 or bool(interaction.followups))

        await self.wait_for(answered)
        response = interaction.response
        assert response is not None
        if response.type == 4:
            assert response.ephemeral, "a refusal before the defer must be ephemeral"
            assert interaction.original is not None
            return Refused(interaction.original.content, before_defer=True)
        assert response.type == 5, f"unexpected callback type {response.type}"
        assert interaction.original is not None
        assert interaction.original.deleted, "the public deferred reply was left in place"
        assert len(interaction.followups) == 1
        followup = interaction.followups[0]
        assert followup.ephemeral, "the refusal after the defer is visible to everyone"
        return Refused(followup.content, before_defer=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "world(**settings): settings the e2e world's bot starts with (PIKABOT_ names)"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def world(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """The real bot against the fakes, once on SQLite and once on a real PostgreSQL (a fresh
    database each; where no PostgreSQL can be had that run skips, and in CI fails)."""
    marker = request.node.get_closest_marker("world")
    overrides: dict[str, Any] = dict(marker.kwargs) if marker else {}
    clock = MovableClock()
    async with (
        FakeDiscord(check_body=discord_body_check(), clock=clock, token=DISCORD_TOKEN) as fake,
        FalEmulator(key=FAL_KEY) as fal,
    ):
        fal.submissions = _Submissions()
        with fake.patch_discord_py(share_clock=True):
            world = World(fake=fake, fal=fal, tmp=tmp_path, clock=clock, overrides=overrides)
            server: PostgresServer | None = None
            if request.param == "postgresql":
                server = request.getfixturevalue("postgres_server")
                world.database_url = await server.create_database()
            await world.start()
            try:
                yield world
            finally:
                await world.stop()
                if server is not None and world.database_url is not None:
                    await server.drop_database(world.database_url)
    fake.assert_valid()
