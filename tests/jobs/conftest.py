"""A JobRunner on the real Store and a real FalClient talking to the fal emulator, with a
messenger that records what the member would be told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.emulator import FalEmulator
from bot.fal import FalClient, FalTimeouts, RetryPolicy
from bot.jobs.messenger import Delivered, Progress
from bot.jobs.progress import ProgressBoard
from bot.jobs.queue import FairQueue
from bot.jobs.runner import JobRunner, RunnerConfig, download_rules
from bot.jobs.slots import FalSlots
from bot.media import InputCache
from bot.pika import PikaRequest, TextRequest, dump_request
from bot.store import DeliveryPath, Job, LedgerKind, NewJob, Store
from tests.secrets import E2E

T0 = 1_795_300_000.0


class SetClock:
    """Epoch seconds that move only when the test moves them (the deadlines read it)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    """The member's side: what was delivered and what failures were told."""

    delivered: list[str] = field(default_factory=list)
    told: list[tuple[str, str]] = field(default_factory=list)

    async def show_progress(self, job: Job, progress: Progress) -> None:
        pass

    async def deliver(self, job: Job, video: Path, *, resumed: bool) -> Delivered:
        self.delivered.append(job.id)
        return Delivered(DeliveryPath.CHANNEL, 1)

    async def tell_failure(self, job: Job, reason: str) -> None:
        self.told.append((job.id, reason))

    async def ready(self) -> None:
        pass


class RecordedSlots(FalSlots):
    """The fal slots, noting each job that gave its slot back."""

    def __init__(self, left: list[str]) -> None:
        super().__init__(FairQueue(), freed=asyncio.Event())
        self.left = left

    def give_back(self, job: Job) -> None:
        self.left.append(job.id)
        super().give_back(job)


@dataclass
class Rig:
    fal: FalEmulator
    store: Store
    client: FalClient
    http: httpx.AsyncClient
    clock: SetClock
    messenger: Recorder
    config: RunnerConfig
    left_fal: list[str] = field(default_factory=list)

    def runner(self, **config: Any) -> JobRunner:
        return JobRunner(
            store=self.store,
            fal=self.client,
            cache=InputCache(
                self.config.output_dir.parent / "cache", max_bytes=10**8, max_age_seconds=3600
            ),
            http=self.http,
            messenger=self.messenger,
            board=ProgressBoard(self.messenger.show_progress, interval=60),
            config=replace(self.config, **config),
            slots=RecordedSlots(self.left_fal),
            clock=self.clock,
        )

    async def new_job(
        self, prompt: str, cost: int = 20, *, request: PikaRequest | None = None
    ) -> Job:
        request = request or TextRequest(prompt=prompt, seed=7)
        return await self.store.jobs.create(
            NewJob(
                mode=str(request.mode),
                endpoint_id=request.endpoint.id,
                request_json=dump_request(request),
                guild_id=1,
                channel_id=10,
                user_id=100,
                input_hashes=[ref.sha256 for ref in request.inputs],
            ),
            cost=cost,
            allowance=1000,
            guild_budget=10_000,
            global_budget=10_000,
            max_unfinished=100,
            period="2026-11-21",
            actor_id=100,
        )

    async def run(self, runner: JobRunner, job: Job, *, resumed: bool = False) -> Job:
        # A bound on a hang, not a measurement: every test ends in well under this.
        async with asyncio.timeout(30):
            await runner.run(job, resumed=resumed)
        ended = await self.store.jobs.get(job.id)
        assert ended is not None
        return ended

    async def kinds(self, job: Job) -> list[LedgerKind]:
        return [entry.kind for entry in await self.store.ledger.for_job(job.id)]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = SetClock()
    async with FalEmulator(key=E2E.fal_key) as fal:
        store = await Store.open(tmp_path / "pikabot.sqlite3", clock=clock)
        http = httpx.AsyncClient(timeout=10)
        client = FalClient(
            fal.base_url,
            fal.base_url,
            E2E.fal_key,
            http=http,
            timeouts=FalTimeouts(connect=2, read=10, write=5, pool=5, stream_read=5, upload=10),
            retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05),
        )
        hosts, https = download_rules([], fal.base_url)
        config = RunnerConfig(
            output_dir=tmp_path / "videos",
            data_uri_max_bytes=512 * 1024,
            output_max_bytes=10**8,
            download_hosts=hosts,
            download_require_https=https,
            poll_interval=0.05,
            progress_interval=60,
            deadline_seconds=3600,
            watch_backoff_max=0.2,
        )
        config.output_dir.mkdir()
        try:
            yield Rig(fal, store, client, http, clock, Recorder(), config)
        finally:
            await http.aclose()
            await store.close()
