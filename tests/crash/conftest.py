"""The bot as a real subprocess (`python -m bot run`) that tests SIGKILL and start again, against
the fake Discord and the fal emulator running in the test process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.emulator import FalEmulator
from bot.sandbox.fakediscord import FakeDiscord
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from bot.store import Job, JobState, LedgerEntry, Store
from tests.fakediscord.openapi import discord_body_check
from tests.secrets import CRASH

DISCORD_TOKEN, FAL_KEY = CRASH
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
WAIT_S = 20.0  # generous bound on any one wait; a healthy run takes a fraction of it


class Watched:
    """Wakes waiters whenever the emulator records something (a submit, a counted request)."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()

    def poke(self) -> None:
        self.changed.set()

    async def until(self, predicate: Callable[[], T], timeout: float = WAIT_S) -> T:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not (value := predicate()):
                self.changed.clear()
                await self.changed.wait()
        return value


class _Counts(dict[str, int]):
    """The emulator's request counts, poking a waiter on every change."""

    def __init__(self, watched: Watched) -> None:
        super().__init__()
        self._watched = watched

    def __missing__(self, key: str) -> int:
        return 0

    def __setitem__(self, key: str, value: int) -> None:
        super().__setitem__(key, value)
        self._watched.poke()


class _Submissions(list[Any]):
    """The emulator's submits, poking a waiter on every append."""

    def __init__(self, watched: Watched) -> None:
        super().__init__()
        self._watched = watched

    def append(self, item: Any) -> None:
        super().append(item)
        self._watched.poke()


@dataclass
class BotProcess:
    """One run of `python -m bot run`; its output goes to the test's log file as it comes."""

    proc: asyncio.subprocess.Process
    log_path: Path
    lines: list[str] = field(default_factory=list)
    _grew: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("a", encoding="utf-8") as out:
            async for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace")
                out.write(line)
                out.flush()
                self.lines.append(line)
                self._grew.set()
        self._grew.set()

    @property
    def exited(self) -> bool:
        return self.proc.returncode is not None

    async def line(self, *needles: str, timeout: float = WAIT_S) -> str:  # noqa: ASYNC109
        """The first output line holding every needle, once the bot has written it."""
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for text in self.lines[seen:]:
                    if all(n in text for n in needles):
                        return text
                seen = len(self.lines)
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"the bot exited before logging {needles}")
                self._grew.clear()
                await self._grew.wait()

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, like a crash or an OOM kill."""
        if not self.exited:
            self.proc.kill()
        await self.proc.wait()
        if self._reader is not None:
            await self._reader

    async def stop(self) -> int:
        """SIGTERM, as an operator stops it; its exit code."""
        if not self.exited:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            await self.kill()
            raise AssertionError("the bot did not stop within 15 s of SIGTERM") from None
        if self._reader is not None:
            await self._reader
        return code


@dataclass
class Crash:
    """The fake Discord, the fal emulator, and the bot process a crash test kills and restarts."""

    fake: FakeDiscord
    fal: FalEmulator
    tmp: Path
    watched: Watched
    env: dict[str, str] = field(default_factory=dict)
    bot: BotProcess | None = None
    runs: int = 0

    @property
    def database(self) -> Path:
        return self.tmp / "pikabot.sqlite3"

    @property
    def log_path(self) -> Path:
        """Everything every run of the bot printed (kept for tests that scan logs for secrets)."""
        return self.tmp / "bot.log"

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIKABOT_")}
        env.update(
            {
                "DISCORD_TOKEN": DISCORD_TOKEN,
                "FAL_KEY": FAL_KEY,
                "PIKABOT_DATABASE": str(self.database),
                "PIKABOT_DATA_DIR": str(self.tmp / "data"),
                "PIKABOT_FAL_QUEUE_URL": self.fal.base_url,
                "PIKABOT_FAL_REST_URL": self.fal.base_url,
                "PIKABOT_DISCORD_API_URL": self.fake.api_url,
                "PIKABOT_DISCORD_GATEWAY_URL": self.fake.gateway_url,
                "PIKABOT_PROGRESS_INTERVAL": "1",
                "PYTHONUNBUFFERED": "1",
                **self.env,
            }
        )
        return env

    async def start(self) -> BotProcess:
        """Start the bot and wait until it has identified on the gateway."""
        assert self.bot is None or self.bot.exited, "the previous run is still alive"
        known = {s.session_id for s in self.fake.sessions}
        self.runs += 1
        with self.log_path.open("a", encoding="utf-8") as out:
            out.write(f"=== run {self.runs} ===\n")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=ROOT,
            env=self._environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        bot = BotProcess(proc, self.log_path)
        bot.start_reading()
        self.bot = bot

        def identified() -> bool:
            return any(s.session_id not in known for s in self.fake.gateway.connected_sessions())

        ready = asyncio.ensure_future(self.fake.wait_for(identified, timeout=WAIT_S))
        exited = asyncio.ensure_future(proc.wait())
        await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            output = "".join(bot.lines[-30:])
            raise AssertionError(
                f"the bot exited ({proc.returncode}) before it was ready:\n{output}"
            )
        exited.cancel()
        ready.result()
        return bot

    async def kill(self) -> None:
        assert self.bot is not None
        await self.bot.kill()

    async def stop(self) -> None:
        """Stop the bot cleanly (its exit code must be 0)."""
        assert self.bot is not None
        assert await self.bot.stop() == 0, "".join(self.bot.lines[-30:])

    async def command(self, name: str, options: dict[str, Any]) -> FakeInteraction:
        """A slash command from the default member in the default channel."""
        return await self.fake.command(self.fake.member, self.fake.channel, name, options)

    @contextlib.asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        """The bot's database, opened while the bot is not running."""
        assert self.bot is None or self.bot.exited, "read the database only while the bot is down"
        async with await Store.open(self.database) as store:
            yield store

    async def job(self, job_id: str) -> Job:
        async with self.store() as store:
            job = await store.jobs.get(job_id)
        assert job is not None, f"no job {job_id}"
        return job

    async def only_job(self) -> Job:
        """The one job the default member has."""
        async with self.store() as store:
            jobs = await store.jobs.recent(self.fake.member.id, limit=10)
        assert len(jobs) == 1, jobs
        return jobs[0]

    async def ledger(self, job_id: str) -> list[LedgerEntry]:
        async with self.store() as store:
            return await store.ledger.for_job(job_id)

    def submits_for(self, prompt: str) -> int:
        """How many submits fal received for the job with this prompt."""
        return sum(1 for s in self.fal.submissions if s.body.get("prompt") == prompt)

    def bot_messages(self) -> list[StoredMessage]:
        """Every live message the bot sent in the channel and in DMs, ephemeral ones too."""
        found: list[StoredMessage] = []
        for channel in self.fake.world.channels.values():
            found += [
                m
                for m in self.fake.messages(channel.id, include_deleted=False)
                if m.author_id == self.fake.bot_user.id
            ]
        return found

    def deliveries(self, job_id: str) -> list[StoredMessage]:
        """The bot's messages that carry the job's video (a file or a link to it)."""
        footer = f"job {job_id}"
        return [
            m
            for m in self.bot_messages()
            if any((e.get("footer") or {}).get("text") == footer for e in m.embeds)
            and (m.attachments or "your video is ready" in m.content)
        ]


def is_state(state: JobState) -> Callable[[Job], bool]:
    return lambda job: job.state is state


@pytest.fixture
async def crash(tmp_path: Path) -> AsyncIterator[Crash]:
    watched: Watched = Watched()
    async with (
        FakeDiscord(check_body=discord_body_check(), token=DISCORD_TOKEN) as fake,
        FalEmulator(key=FAL_KEY) as fal,
    ):
        fal.counts = _Counts(watched)  # type: ignore[assignment]
        fal.submissions = _Submissions(watched)
        world = Crash(fake=fake, fal=fal, tmp=tmp_path, watched=watched)
        try:
            yield world
        finally:
            if world.bot is not None:
                await world.bot.kill()
    fake.assert_valid()
