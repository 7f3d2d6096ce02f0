"""The bot's counters and latency histogram on prometheus-client, one registry per bot.

Each `Metrics` owns a `CollectorRegistry` (never the library's process-global REGISTRY), so two
bots in one process, as in the tests, never share a number. Values read at scrape time (from the
database, from the live queue) come from a collector the health endpoint registers here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import SimpleNamespace

import aiohttp
import prometheus_client
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bot.fal import (
    FalAuthError,
    FalError,
    FalNotFound,
    FalPlatformError,
    FalStartTimeout,
    FalSubmissionUnknown,
    FalValidationError,
)

# What generate_latest() writes, in every version: the text format 0.0.4 (our names need no
# escaping). Newer prometheus-client calls it CONTENT_TYPE_PLAIN_0_0_4; older ones lack that name.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# fal calls take from milliseconds (status) to minutes (uploads of whole videos).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Counter:
    """A prometheus-client counter whose label values are passed in order, e.g. inc("input")."""

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.labels = tuple(labels)
        self._counter = prometheus_client.Counter(
            name, documentation, self.labels, registry=registry
        )

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        """Add `amount` (default 1) to the series with these label values."""
        if len(label_values) != len(self.labels):
            # prometheus-client would only say "Incorrect label count".
            raise ValueError(f"{self.name} takes labels {self.labels}, got {label_values}")
        self._counter.labels(*label_values).inc(amount)


def fal_error_kind(error: FalError) -> str:
    """A short, bounded label for a fal failure: fal's own error type where it sent one."""
    if isinstance(error, FalAuthError):
        return "auth"
    if isinstance(error, FalNotFound):
        return f"not_found_{error.what}"
    if isinstance(error, FalValidationError):
        return "validation"
    if isinstance(error, FalSubmissionUnknown):
        return "submission_unknown"
    if isinstance(error, FalStartTimeout):
        return "start_timeout"
    if isinstance(error, FalPlatformError):
        return error.error_type or f"http_{error.status}"
    return type(error).__name__


class Metrics:
    """Everything the bot counts while it runs; one per bot, read by the /metrics endpoint.

    Numbers that live in the database (jobs by mode and state, credits spent) are not kept
    here: the endpoint reads them at scrape time, so they survive restarts and are exact.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.fal_latency = Histogram(
            "pikabot_fal_request_seconds",
            "Time of calls to fal made by the job runner, by call.",
            ("call",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fal_errors = Counter(
            "pikabot_fal_errors_total",
            "Failures of fal calls and of models at fal, by call and error type.",
            ("call", "type"),
            self.registry,
        )
        self.deliveries = Counter(
            "pikabot_deliveries_total",
            "Finished videos handed to members, by path (channel, dm, link, kept).",
            ("path",),
            self.registry,
        )
        self.job_endings = Counter(
            "pikabot_job_endings_total",
            "Jobs this process ended, by mode and end state.",
            ("mode", "state"),
            self.registry,
        )
        self.discord_requests = Counter(
            "pikabot_discord_requests_total",
            "HTTP requests to Discord's API by response status class.",
            ("status",),
            self.registry,
        )
        self.discord_rate_limited = Counter(
            "pikabot_discord_rate_limited_total",
            "Discord 429 answers, by scope (user, shared, global).",
            ("scope",),
            self.registry,
        )
        self.pruned = Counter(
            "pikabot_pruned_files_total",
            "Files removed by retention, by kind (input, video).",
            ("kind",),
            self.registry,
        )

    def exposition(self) -> bytes:
        """Every metric in the registry in the text format CONTENT_TYPE names."""
        return generate_latest(self.registry)

    @contextmanager
    def fal_call(self, call: str) -> Iterator[None]:
        """Time a call to fal and count it as an error of its kind if it raises a FalError."""
        started = time.perf_counter()
        try:
            yield
        except FalError as error:
            self.fal_errors.inc(call, fal_error_kind(error))
            raise
        finally:
            self.fal_latency.labels(call).observe(time.perf_counter() - started)

    def fal_failed(self, call: str, error: FalError | str) -> None:
        """Count a fal failure seen outside `fal_call` (a watch, or a model's own error)."""
        kind = error if isinstance(error, str) else fal_error_kind(error)
        self.fal_errors.inc(call, kind)

    def delivered(self, path: str) -> None:
        """Count a video handed over by this path."""
        self.deliveries.inc(str(path))

    def job_ended(self, mode: str, state: str) -> None:
        """Count a job this process moved to an end state."""
        self.job_endings.inc(str(mode), str(state))

    def discord_trace(self) -> aiohttp.TraceConfig:
        """An aiohttp trace for discord.py's session (Client(http_trace=...)) counting answers."""
        trace = aiohttp.TraceConfig()

        async def on_request_end(
            session: aiohttp.ClientSession,
            context: SimpleNamespace,
            params: aiohttp.TraceRequestEndParams,
        ) -> None:
            status = params.response.status
            self.discord_requests.inc(f"{status // 100}xx")
            if status == 429:
                self.discord_rate_limited.inc(_rate_limit_scope(params.response.headers))

        trace.on_request_end.append(on_request_end)
        return trace


def _rate_limit_scope(headers: Mapping[str, str]) -> str:
    if headers.get("X-RateLimit-Global", "").lower() == "true":
        return "global"
    scope = headers.get("X-RateLimit-Scope", "user").lower()
    return scope if scope in {"user", "shared", "global"} else "user"
