"""The operator's HTTP endpoint: /healthz says whether the bot works, /metrics how it is doing."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from bot import metrics
from bot.listener import Listener
from bot.metrics import Family, Gauge

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


async def collect(bot: PikaBot) -> list[Family]:
    """The metric families read at scrape time: from the database and the live queue."""
    jobs = Gauge("pikabot_jobs", "Jobs in the database by mode and state.", ("mode", "state"))
    for (mode, state), count in (await bot.store.job_counts()).items():
        jobs.set(count, mode, state)
    waiting = Gauge("pikabot_queue_waiting", "Jobs waiting in the bot's own queue for a fal slot.")
    waiting.set(bot.jobs.waiting_count)
    at_fal = Gauge("pikabot_queue_at_fal", "Jobs this process has at fal now.")
    at_fal.set(bot.jobs.at_fal_count)
    slots = Gauge("pikabot_fal_concurrency", "Jobs the bot sends to fal at once at most.")
    slots.set(bot.jobs.limits.fal_concurrency)
    period = bot.jobs.accounts.period()
    spent = Gauge(
        "pikabot_credits_spent",
        "Credits held or charged across all servers on the current allowance day.",
        ("day",),
    )
    spent.set(await bot.store.global_spend(period), period)
    budget = Gauge("pikabot_credits_daily_budget", "The global daily budget in credits.")
    budget.set(bot.jobs.limits.global_daily_budget)
    families: list[Family] = [jobs, waiting, at_fal, slots, spent, budget]
    latency = bot.latency
    if math.isfinite(latency):
        heartbeat = Gauge("pikabot_gateway_latency_seconds", "Discord gateway heartbeat latency.")
        heartbeat.set(latency)
        families.append(heartbeat)
    return families


class HealthServer:
    """A small aiohttp server for /healthz and /metrics; off unless PIKABOT_HTTP_PORT is set."""

    def __init__(self, bot: PikaBot, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._bot = bot
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
        """Start listening."""
        await self._listener.start()

    async def close(self) -> None:
        """Stop listening."""
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
        families = [*await collect(self._bot), *self._bot.metrics.families()]
        return web.Response(
            body=metrics.render(families).encode(),
            headers={"Content-Type": metrics.CONTENT_TYPE},
        )
