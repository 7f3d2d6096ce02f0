"""The operator's HTTP endpoint: /healthz says whether the bot works, /metrics how it is doing."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, Metric

from bot.ops.listener import Listener
from bot.ops.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from bot.app import PikaBot

log = logging.getLogger(__name__)

# A database write that waits longer than this (a lock held elsewhere) counts as not writable.
DATABASE_PROBE_TIMEOUT_S = 5.0
HEALTH_META_KEY = "health_probe"


@dataclass(frozen=True, slots=True)
class Check:
    """One health check's verdict; `detail` says what is wrong when it failed."""

    name: str
    ok: bool
    detail: str = "ok"


def gateway_check(bot: PikaBot) -> Check:
    """The gateway connection is up: READY received and the websocket open."""
    if bot.is_closed():
        return Check("gateway", False, "the bot is shutting down")
    if not bot.is_ready():
        return Check("gateway", False, "not connected to Discord's gateway yet")
    ws = bot.ws
    if ws is None or not ws.open:
        return Check("gateway", False, "the gateway connection is down (reconnecting)")
    return Check("gateway", True)


async def database_check(bot: PikaBot) -> Check:
    """The database takes a write within seconds (not read-only, not locked, disk not full)."""
    try:
        async with asyncio.timeout(DATABASE_PROBE_TIMEOUT_S):
            await bot.store.set_meta(HEALTH_META_KEY, str(int(time.time())))
    except TimeoutError:
        return Check("database", False, f"a write waited more than {DATABASE_PROBE_TIMEOUT_S:g} s")
    except Exception as error:
        return Check("database", False, f"a write failed: {type(error).__name__}: {error}")
    return Check("database", True)


def jobs_check(bot: PikaBot) -> Check:
    """The job runner's scheduler and progress tasks are alive."""
    if not bot.run_jobs:
        return Check("jobs", False, "this process does not run jobs")
    if not bot.jobs.alive:
        return Check("jobs", False, "the job scheduler is not running")
    return Check("jobs", True)


async def health(bot: PikaBot) -> list[Check]:
    """Every health check, in a fixed order."""
    return [gateway_check(bot), await database_check(bot), jobs_check(bot)]


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


@dataclass(frozen=True, slots=True)
class StoredNumbers:
    """What /metrics reads from the database: jobs by mode and state, today's spend."""

    jobs: dict[tuple[str, str], int]
    day: str
    spent: int

    @classmethod
    async def read(cls, bot: PikaBot) -> StoredNumbers:
        day = bot.jobs.accounts.period()
        return cls(await bot.store.job_counts(), day, await bot.store.global_spend(day))


class ScrapeTimeCollector:
    """A prometheus-client collector for the values read at scrape time, not counted as they go.

    The live queue and limits are read in `collect()`. The database can only be read
    asynchronously, so the endpoint calls `read_database()` just before rendering.
    """

    def __init__(self, bot: PikaBot) -> None:
        self._bot = bot
        self._stored: StoredNumbers | None = None

    async def read_database(self) -> None:
        """Fetch the database's numbers for the next `collect()`."""
        self._stored = await StoredNumbers.read(self._bot)

    def describe(self) -> list[Metric]:
        # Names only: registering a second collector for the same bot fails at once.
        return [_gauge(name) for name in SCRAPE_TIME_GAUGES]

    def collect(self) -> Iterator[Metric]:
        bot = self._bot
        if self._stored is not None:
            jobs = _gauge("pikabot_jobs")
            for (mode, state), count in sorted(self._stored.jobs.items()):
                jobs.add_metric((mode, state), count)
            yield jobs
            yield _gauge("pikabot_credits_spent", self._stored.spent, self._stored.day)
        yield _gauge("pikabot_queue_waiting", bot.jobs.waiting_count)
        yield _gauge("pikabot_queue_at_fal", bot.jobs.at_fal_count)
        yield _gauge("pikabot_fal_concurrency", bot.jobs.limits.fal_concurrency)
        yield _gauge("pikabot_credits_daily_budget", bot.jobs.limits.global_daily_budget)
        if math.isfinite(bot.latency):
            yield _gauge("pikabot_gateway_latency_seconds", bot.latency)


class HealthServer:
    """A small aiohttp server for /healthz and /metrics; off unless PIKABOT_HTTP_PORT is set."""

    def __init__(self, bot: PikaBot, *, host: str = "127.0.0.1", port: int = 0) -> None:
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
