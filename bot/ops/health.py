"""The operator's HTTP endpoint: /healthz says whether the bot works, /metrics how it is doing."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, Metric

from bot.ops.listener import Listener
from bot.ops.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

# A database write that waits longer than this (a lock held elsewhere) counts as not writable.
DATABASE_PROBE_TIMEOUT_S = 5.0
HEALTH_META_KEY = "health_probe"


@dataclass(frozen=True, slots=True)
class Gateway:
    """The gateway connection as the bot sees it now."""

    closed: bool
    ready: bool
    open: bool


@dataclass(frozen=True, slots=True)
class JobsNow:
    """The job engine of this process right now."""

    runs_jobs: bool
    alive: bool
    waiting: int
    at_fal: int
    fal_concurrency: int
    global_daily_budget: int


@dataclass(frozen=True, slots=True)
class StoredNumbers:
    """What /metrics reads from the database: jobs by mode and state, today's spend."""

    jobs: dict[tuple[str, str], int]
    day: str
    spent: int


class Watched(Protocol):
    """What the endpoint reads of the bot, so that it needs neither discord.py nor the jobs
    (`bot.app.BotHealth` adapts the bot to it)."""

    @property
    def metrics(self) -> Metrics: ...

    def gateway(self) -> Gateway: ...

    def latency(self) -> float:
        """The gateway's heartbeat latency in seconds (inf or nan before the first one)."""
        ...

    def jobs(self) -> JobsNow: ...

    async def write_probe(self, key: str, value: str) -> None: ...

    async def stored_numbers(self) -> StoredNumbers: ...


@dataclass(frozen=True, slots=True)
class Check:
    """One health check's verdict; `detail` says what is wrong when it failed."""

    name: str
    ok: bool
    detail: str = "ok"


def gateway_check(gateway: Gateway) -> Check:
    """The gateway connection is up: READY received and the websocket open."""
    if gateway.closed:
        return Check("gateway", False, "the bot is shutting down")
    if not gateway.ready:
        return Check("gateway", False, "not connected to Discord's gateway yet")
    if not gateway.open:
        return Check("gateway", False, "the gateway connection is down (reconnecting)")
    return Check("gateway", True)


async def database_check(bot: Watched) -> Check:
    """The database takes a write within seconds (not read-only, not locked, disk not full)."""
    try:
        async with asyncio.timeout(DATABASE_PROBE_TIMEOUT_S):
            await bot.write_probe(HEALTH_META_KEY, str(int(time.time())))
    except TimeoutError:
        return Check("database", False, f"a write waited more than {DATABASE_PROBE_TIMEOUT_S:g} s")
    except Exception as error:
        return Check("database", False, f"a write failed: {type(error).__name__}: {error}")
    return Check("database", True)


def jobs_check(jobs: JobsNow) -> Check:
    """The job runner's scheduler and progress tasks are alive."""
    if not jobs.runs_jobs:
        return Check("jobs", False, "this process does not run jobs")
    if not jobs.alive:
        return Check("jobs", False, "the job scheduler is not running")
    return Check("jobs", True)


async def health(bot: Watched) -> list[Check]:
    """Every health check, in a fixed order."""
    return [gateway_check(bot.gateway()), await database_check(bot), jobs_check(bot.jobs())]


# The gauges made fresh at every scrape: name -> (help, labels).
SCRAPE_TIME_GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "pikabot_jobs": ("Jobs in the database by mode and state.", ("mode", "state")),
    "pikabot_queue_waiting": ("Jobs waiting in the bot's own queue for a fal slot.", ()),
    "pikabot_queue_at_fal": ("Jobs this process has at fal now.", ()),
    "pikabot_fal_concurrency": ("Jobs the bot sends to fal at once at most.", ()),
    "pikabot_credits_spent": (
        "Credits held or charged across all servers on the current allowance day.",
        ("day",),
    ),
    "pikabot_credits_daily_budget": ("The global daily budget in credits.", ()),
    "pikabot_gateway_latency_seconds": ("Discord gateway heartbeat latency.", ()),
}


def _gauge(name: str, value: float | None = None, *labels: str) -> GaugeMetricFamily:
    documentation, label_names = SCRAPE_TIME_GAUGES[name]
    family = GaugeMetricFamily(name, documentation, labels=label_names)
    if value is not None:
        family.add_metric(labels, value)
    return family


class ScrapeTimeCollector:
    """A prometheus-client collector for the values read at scrape time, not counted as they go.

    The live queue and limits are read in `collect()`. The database can only be read
    asynchronously, so the endpoint calls `read_database()` just before rendering.
    """

    def __init__(self, bot: Watched) -> None:
        self._bot = bot
        self._stored: StoredNumbers | None = None

    async def read_database(self) -> None:
        """Fetch the database's numbers for the next `collect()`."""
        self._stored = await self._bot.stored_numbers()

    def describe(self) -> list[Metric]:
        # Names only: registering a second collector for the same bot fails at once.
        return [_gauge(name) for name in SCRAPE_TIME_GAUGES]

    def collect(self) -> Iterator[Metric]:
        if self._stored is not None:
            jobs = _gauge("pikabot_jobs")
            for (mode, state), count in sorted(self._stored.jobs.items()):
                jobs.add_metric((mode, state), count)
            yield jobs
            yield _gauge("pikabot_credits_spent", self._stored.spent, self._stored.day)
        now = self._bot.jobs()
        yield _gauge("pikabot_queue_waiting", now.waiting)
        yield _gauge("pikabot_queue_at_fal", now.at_fal)
        yield _gauge("pikabot_fal_concurrency", now.fal_concurrency)
        yield _gauge("pikabot_credits_daily_budget", now.global_daily_budget)
        latency = self._bot.latency()
        if math.isfinite(latency):
            yield _gauge("pikabot_gateway_latency_seconds", latency)


class HealthServer:
    """A small aiohttp server for /healthz and /metrics; off unless PIKABOT_HTTP_PORT is set."""

    def __init__(self, bot: Watched, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._bot = bot
        self._scrape_time = ScrapeTimeCollector(bot)
        self._registered = False
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._listener = Listener(
            app, host=host, port=port, what="health and metrics endpoint (/healthz, /metrics)"
        )

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when started with port 0)."""
        return self._listener.port

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:8080."""
        return self._listener.base_url

    async def start(self) -> None:
        """Start listening, and add the scrape-time values to the bot's metrics."""
        self._bot.metrics.registry.register(self._scrape_time)
        self._registered = True
        try:
            await self._listener.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop listening."""
        if self._registered:
            self._bot.metrics.registry.unregister(self._scrape_time)
            self._registered = False
        await self._listener.close()

    async def _healthz(self, request: web.Request) -> web.Response:
        checks = await health(self._bot)
        ok = all(check.ok for check in checks)
        body = {
            "ok": ok,
            "checks": {check.name: check.ok for check in checks},
            "failed": {check.name: check.detail for check in checks if not check.ok},
        }
        if not ok:
            log.warning("health check failed: %s", body["failed"])
        return web.json_response(body, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        await self._scrape_time.read_database()
        return web.Response(
            body=self._bot.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE}
        )
