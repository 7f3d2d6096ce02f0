"""The one wiring of the bot from its settings: what `PikaBot` receives, built the same way by
`run`, `sync`, `forget`, the sandbox, the end-to-end tests and the benchmarks.

Whoever opens the store, the HTTP client and the fal client passes them in and closes them;
everything here is built from them and the settings, and owns nothing that needs closing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bot.config import Settings
from bot.fal import FalClient
from bot.jobs import Jobs, Limits, Messenger
from bot.jobs.intake import Intake, cdn_rules
from bot.jobs.retention import Retention
from bot.jobs.runner import RunnerConfig, download_rules
from bot.media import DEFAULT_LIMITS, InputCache
from bot.media import Limits as MediaLimits
from bot.ops.metrics import Metrics
from bot.store import StoreBackend


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the bot runs on except Discord itself."""

    settings: Settings
    store: StoreBackend
    fal: FalClient
    http: httpx.AsyncClient
    clock: Callable[[], float]
    media_limits: MediaLimits
    metrics: Metrics
    cache: InputCache
    intake: Intake
    retention: Retention
    runner_config: RunnerConfig
    limits: Limits

    def jobs(self, messenger: Messenger, *, guild_gone: Callable[[int], bool]) -> Jobs:
        """The job engine, telling members through `messenger` (the bot's Discord side);
        `guild_gone(guild_id)` says whether the bot knows it has left that server."""
        return Jobs(
            store=self.store,
            fal=self.fal,
            cache=self.cache,
            http=self.http,
            messenger=messenger,
            runner_config=self.runner_config,
            limits=self.limits,
            clock=self.clock,
            metrics=self.metrics,
            guild_gone=guild_gone,
        )


def build_services(
    settings: Settings,
    *,
    store: StoreBackend,
    fal: FalClient,
    http: httpx.AsyncClient,
    clock: Callable[[], float] = time.time,
    media_limits: MediaLimits = DEFAULT_LIMITS,
) -> Services:
    """The bot's services as the settings describe them, on these open clients."""
    metrics = Metrics()
    cache = input_cache(settings, clock=clock)
    cdn_hosts, cdn_https = cdn_rules(settings.discord_cdn_hosts, settings.discord_api_url)
    return Services(
        settings=settings,
        store=store,
        fal=fal,
        http=http,
        clock=clock,
        media_limits=media_limits,
        metrics=metrics,
        cache=cache,
        intake=Intake(
            http=http,
            concurrency=settings.intake_concurrency,
            cdn_hosts=cdn_hosts,
            require_https=cdn_https,
        ),
        retention=build_retention(settings, store, cache=cache, metrics=metrics, clock=clock),
        runner_config=runner_config(settings),
        limits=limits(settings),
    )


def input_cache(settings: Settings, *, clock: Callable[[], float] = time.time) -> InputCache:
    """The cache of members' pictures and clips in the data folder."""
    return InputCache(
        settings.cache_dir,
        max_bytes=settings.cache_max_bytes,
        max_age_seconds=settings.cache_max_age_hours * 3600,
        clock=clock,
    )


def build_retention(
    settings: Settings,
    store: StoreBackend,
    *,
    cache: InputCache | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
) -> Retention:
    """Pruning and forgetting as the settings bound them. `forget` uses this alone: it needs
    neither fal nor Discord, so it runs without their secrets."""
    return Retention(
        store=store,
        cache=cache if cache is not None else input_cache(settings, clock=clock),
        output_dir=settings.output_dir,
        videos_max_age_seconds=settings.videos_max_age_hours * 3600,
        videos_max_bytes=settings.videos_max_total_bytes,
        interval_seconds=settings.prune_interval_minutes * 60,
        jobs_max_age_seconds=settings.job_retention_days * 86400,
        metrics=metrics,
        clock=clock,
    )


def runner_config(settings: Settings) -> RunnerConfig:
    """How the runner sends, watches and downloads, from the settings."""
    hosts, https = download_rules(
        settings.download_hosts, settings.fal_queue_url, settings.fal_rest_url
    )
    return RunnerConfig(
        output_dir=settings.output_dir,
        data_uri_max_bytes=settings.data_uri_max_bytes,
        output_max_bytes=settings.output_max_bytes,
        download_hosts=hosts,
        download_require_https=https,
        poll_interval=max(2.0, settings.progress_interval),
        progress_interval=settings.progress_interval,
        deadline_seconds=settings.job_deadline_seconds,
        hard_deadline_seconds=settings.job_hard_deadline_seconds,
        webhook_url=settings.fal_webhook_url,
    )


def limits(settings: Settings) -> Limits:
    """Prices, allowances and budgets, from the settings."""
    return Limits(
        prices=settings.prices,
        daily_allowance=settings.daily_allowance,
        reset_hour=settings.reset_hour,
        guild_daily_budget=settings.guild_daily_budget,
        global_daily_budget=settings.global_daily_budget,
        max_jobs_per_member=settings.max_jobs_per_member,
        fal_concurrency=settings.fal_concurrency,
    )
