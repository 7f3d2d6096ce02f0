"""The bot's counters and their Prometheus text rendering, written by hand (no client library).

prometheus-client would bring a process-global registry (awkward with several bots in one test
process) and a dependency the Docker image and the pip path must both carry, for what is here
about a hundred lines: counters, gauges, one histogram, and the stable text format 0.0.4.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

import aiohttp

from bot.fal import (
    FalAuthError,
    FalError,
    FalNotFound,
    FalPlatformError,
    FalStartTimeout,
    FalSubmissionUnknown,
    FalValidationError,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# fal calls take from milliseconds (status) to minutes (uploads of whole videos).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _sample(name: str, names: Sequence[str], values: Sequence[str], value: float) -> str:
    if not names:
        return f"{name} {_number(value)}"
    pairs = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return f"{name}{{{pairs}}} {_number(value)}"


@dataclass
class Counter:
    """A number that only goes up, per combination of label values."""

    name: str
    help: str
    labels: Labels = ()
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        """Add `amount` (default 1) to the series with these label values."""
        if len(label_values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {label_values}")
        self.values[label_values] = self.values.get(label_values, 0.0) + amount

    def get(self, *label_values: str) -> float:
        """The series' current value (0 if it never moved)."""
        return self.values.get(label_values, 0.0)

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for key in sorted(self.values):
            yield _sample(self.name, self.labels, key, self.values[key])


@dataclass
class Gauge:
    """A number that goes up and down; here built fresh at every scrape."""

    name: str
    help: str
    labels: Labels = ()
    values: dict[Labels, float] = field(default_factory=dict)

    def set(self, value: float, *label_values: str) -> None:
        """Set the series with these label values."""
        if len(label_values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {label_values}")
        self.values[label_values] = value

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        for key in sorted(self.values):
            yield _sample(self.name, self.labels, key, self.values[key])


@dataclass
class Histogram:
    """Observed durations in cumulative buckets, per combination of label values."""

    name: str
    help: str
    labels: Labels = ()
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    series: dict[Labels, list[float]] = field(default_factory=dict)  # bucket counts, sum, count

    def observe(self, value: float, *label_values: str) -> None:
        """Record one observation."""
        if len(label_values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {label_values}")
        row = self.series.setdefault(label_values, [0.0] * (len(self.buckets) + 2))
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                row[index] += 1
        row[-2] += value
        row[-1] += 1

    def count(self, *label_values: str) -> int:
        """How many observations the series holds."""
        row = self.series.get(label_values)
        return 0 if row is None else int(row[-1])

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        names = (*self.labels, "le")
        for key in sorted(self.series):
            row = self.series[key]
            for bound, hits in zip(self.buckets, row, strict=False):
                yield _sample(f"{self.name}_bucket", names, (*key, _number(bound)), hits)
            yield _sample(f"{self.name}_bucket", names, (*key, "+Inf"), row[-1])
            yield _sample(f"{self.name}_sum", self.labels, key, row[-2])
            yield _sample(f"{self.name}_count", self.labels, key, row[-1])


Family = Counter | Gauge | Histogram


def render(families: Iterable[Family]) -> str:
    """The Prometheus text exposition of these metric families."""
    lines: list[str] = []
    for family in families:
        lines.extend(family.render())
    return "\n".join(lines) + "\n"


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
        self.fal_latency = Histogram(
            "pikabot_fal_request_seconds",
            "Time of calls to fal made by the job runner, by call.",
            ("call",),
        )
        self.fal_errors = Counter(
            "pikabot_fal_errors_total",
            "Failures of fal calls and of models at fal, by call and error type.",
            ("call", "type"),
        )
        self.deliveries = Counter(
            "pikabot_deliveries_total",
            "Finished videos handed to members, by path (channel, dm, link, kept).",
            ("path",),
        )
        self.job_endings = Counter(
            "pikabot_job_endings_total",
            "Jobs this process ended, by mode and end state.",
            ("mode", "state"),
        )
        self.discord_requests = Counter(
            "pikabot_discord_requests_total",
            "HTTP requests to Discord's API by response status class.",
            ("status",),
        )
        self.discord_rate_limited = Counter(
            "pikabot_discord_rate_limited_total",
            "Discord 429 answers, by scope (user, shared, global).",
            ("scope",),
        )
        self.pruned = Counter(
            "pikabot_pruned_files_total",
            "Files removed by retention, by kind (input, video).",
            ("kind",),
        )

    def families(self) -> list[Family]:
        """Every family this registry holds, in a stable order."""
        return [
            self.fal_latency,
            self.fal_errors,
            self.deliveries,
            self.job_endings,
            self.discord_requests,
            self.discord_rate_limited,
            self.pruned,
        ]

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
            self.fal_latency.observe(time.perf_counter() - started, call)

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
