"""Benchmark 1: acknowledgement latency under a burst of slash commands, PikaBot vs a bare defer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.harness import OPEN_BUDGETS, Stage, at_rate, spawn, stage
from bench.stats import median, ms, percentile, show, verdict
from bot.emulator import JobScript
from bot.sandbox.fakediscord import FakeInteraction

DEADLINE_S = 3.0


@dataclass(frozen=True)
class Burst:
    """One burst's acknowledgement latencies (seconds) and the commands never acknowledged."""

    latencies: list[float]
    misses: int
    lag_p99_ms: float

    @property
    def p50_ms(self) -> float:
        return ms(percentile(self.latencies, 50))

    @property
    def p99_ms(self) -> float:
        return ms(percentile(self.latencies, 99))

    @property
    def max_ms(self) -> float:
        return ms(max(self.latencies, default=math.nan))


async def burst_on(on: Stage, count: int, seconds: float) -> list[FakeInteraction]:
    """`count` /pika text commands from `count` members, spread evenly over `seconds`."""

    async def one(i: int) -> FakeInteraction:
        member = on.members[i % len(on.members)]
        channel = on.channels[i % len(on.channels)]
        return await on.command(member, channel, "pika text", {"prompt": f"a red fox, take {i}"})

    return await at_rate(count, seconds, one)


def tally(on: Stage, interactions: list[FakeInteraction]) -> tuple[list[float], int]:
    """Latencies of the answered ones and how many missed the 3 s deadline."""
    latencies = [x for x in (on.ack_latency(i) for i in interactions) if x is not None]
    misses = len(interactions) - len(latencies) + sum(1 for x in latencies if x > DEADLINE_S)
    return latencies, misses


async def one_run(mode: str, count: int, seconds: float) -> Burst:
    """A fresh stage and bot process, one warm-up command, then the measured burst."""
    async with stage(members=count) as on:
        # Jobs stay in fal's queue: the emulator renders nothing while acks are measured.
        on.fal.default_script = JobScript(hold_in_queue=True)
        settings: dict[str, Any] = dict(OPEN_BUDGETS) if mode == "pikabot" else {}
        bot = await spawn(on, mode, settings=settings)
        try:
            warm = await on.command(on.members[0], on.channels[0], "pika text", {"prompt": "warm"})
            await on.fake.wait_for_response(warm, timeout=10)
            bot.start_window()
            interactions = await burst_on(on, count, seconds)
            try:
                await on.fake.wait_for(
                    lambda: all(i.acknowledged for i in interactions), timeout=DEADLINE_S + 2
                )
            except TimeoutError:
                pass
        finally:
            figures = await bot.stop()
        latencies, misses = tally(on, interactions)
        return Burst(latencies, misses, float(figures["lag"]["p99_ms"]))


async def run(*, quick: bool, reps: int) -> dict[str, Any]:
    count, seconds = (50, 0.25) if quick else (200, 1.0)
    runs: dict[str, list[Burst]] = {"minimal": [], "pikabot": []}
    for rep in range(reps):
        # Alternate the order so neither bot always runs on a warmer (or busier) machine.
        order = ["minimal", "pikabot"] if rep % 2 == 0 else ["pikabot", "minimal"]
        for mode in order:
            result = await one_run(mode, count, seconds)
            runs[mode].append(result)
            print(
                f"  rep {rep + 1} {mode:8s} p50 {result.p50_ms:7.1f} ms"
                f"  p99 {result.p99_ms:7.1f} ms"
                f"  max {result.max_ms:7.1f} ms  misses {result.misses}"
                f"  bot loop lag p99 {result.lag_p99_ms:6.1f} ms",
                flush=True,
            )

    def med(mode: str, attr: str) -> float:
        return median([getattr(b, attr) for b in runs[mode]])

    p99, base_p99 = med("pikabot", "p99_ms"), med("minimal", "p99_ms")
    misses = sum(b.misses for b in runs["pikabot"])
    ratio = p99 / base_p99
    show(
        f"1. Acknowledgement: {count} commands from {count} members in {seconds:g} s "
        f"(medians of {reps} runs)",
        [
            ("PikaBot p50 (ms)", med("pikabot", "p50_ms")),
            ("PikaBot p99 (ms)", p99),
            ("PikaBot max (ms)", med("pikabot", "max_ms")),
            ("baseline p50 (ms)", med("minimal", "p50_ms")),
            ("baseline p99 (ms)", base_p99),
            ("baseline max (ms)", med("minimal", "max_ms")),
            ("p99 ratio to baseline", ratio),
            ("misses of 3 s (all PikaBot runs)", misses),
            ("PikaBot loop lag p99 (ms)", med("pikabot", "lag_p99_ms")),
            ("target p99 <= 150 ms", verdict(p99 <= 150)),
            ("target <= 1.5x baseline p99", verdict(ratio <= 1.5)),
            ("target zero misses", verdict(misses == 0)),
        ],
    )
    return {"p99_ms": p99, "baseline_p99_ms": base_p99, "ratio": ratio, "misses": misses}
