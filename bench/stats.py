"""Percentiles, medians, an event-loop lag probe and the machine description the figures need."""

from __future__ import annotations

import asyncio
import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values (a run that measured nothing must not look like zero)."""
    return statistics.median(values) if values else math.nan


def ms(seconds: float) -> float:
    return seconds * 1000.0


@dataclass
class LagProbe:
    """How late the event loop wakes a task that sleeps `interval`: a direct measure of how long
    something else held the loop. Samples after `mark()` only."""

    interval: float = 0.01
    samples: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bench-lag-probe")

    def mark(self) -> None:
        self.samples.clear()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, loop.time() - before - self.interval))

    def summary(self) -> dict[str, float]:
        """p50/p99/max lag in milliseconds and the sample count."""
        return {
            "p50_ms": ms(percentile(self.samples, 50)),
            "p99_ms": ms(percentile(self.samples, 99)),
            "max_ms": ms(max(self.samples, default=math.nan)),
            "samples": float(len(self.samples)),
        }


@dataclass(frozen=True)
class Usage:
    """CPU seconds and peak RSS of this process at one moment."""

    cpu_s: float
    maxrss_mb: float
    wall: float

    @classmethod
    def now(cls) -> Usage:
        own = resource.getrusage(resource.RUSAGE_SELF)
        return cls(own.ru_utime + own.ru_stime, peak_rss_mb(), time.monotonic())


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec, so a child started by a big
    parent would report the parent's peak.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, str]:
    """What the figures were measured on: CPUs, RAM, CPU model, load, Python, date."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "ram": ram,
        "cpu": model,
        "load average (1/5/15 min)": load,
        "python": platform.python_version(),
    }


def show(title: str, rows: Sequence[tuple[str, object]]) -> None:
    """Print one result block: a title and aligned name/value lines."""
    print(f"\n== {title}")
    width = max((len(name) for name, _ in rows), default=0)
    for name, value in rows:
        if isinstance(value, float):
            text = "n/a" if math.isnan(value) else f"{value:,.2f}"
        else:
            text = str(value)
        print(f"  {name.ljust(width)}  {text}")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"
