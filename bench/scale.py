"""Benchmark 5: 1,000 jobs in flight in one PikaBot process, 100 members in 20 channels."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from bench.ack import burst_on, tally
from bench.harness import OPEN_BUDGETS, Stage, spawn, stage, wall_to_monotonic
from bench.stats import ms, percentile, show, verdict
from bot.emulator import JobScript

# Discord's observed limit on message edits per channel (DISCORD.md): about 5 per 5 s.
EDITS_PER_WINDOW = 5
WINDOW_S = 5.0


def edit_times_by_channel(on: Stage, since: float) -> tuple[dict[int, list[float]], int]:
    """Progress edits after `since` (monotonic) by channel, and how many edits were bookends.

    A command's reply is edited once right after the defer (the first progress reply) and once
    when the job ends; those answer the member's own command and are not throttled. Every
    other edit is a progress update, which the bot's ProgressBoard throttles.
    """
    by_token: dict[str, list[float]] = defaultdict(list)
    found: dict[int, list[float]] = defaultdict(list)
    for r in on.fake.requests:
        if r.method != "PATCH" or r.status >= 300 or "/messages/" not in r.path:
            continue
        at = wall_to_monotonic(r.at)
        if at < since:
            continue
        parts = r.path.strip("/").split("/")
        if parts[0] == "webhooks":
            by_token[parts[2]].append(at)
        else:
            found[int(parts[1])].append(at)
    bookends = 0
    for token, times in by_token.items():
        interaction = on.fake.interaction_by_token(token)
        if interaction is None:
            continue
        times.sort()
        middle = times[1:-1]
        bookends += len(times) - len(middle)
        found[interaction.channel_id] += middle
    return found, bookends


def busiest_window(times: list[float], window: float) -> int:
    """The most edits any `window` seconds held (times in one channel)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def run(*, quick: bool, reps: int) -> dict[str, Any]:
    # One run: at 1,000 jobs a minute each, repetitions would take the machine for long.
    if quick:
        jobs, members, channels, hold_s, send_s = 100, 20, 5, 5.0, 2.0
    else:
        jobs, members, channels, hold_s, send_s = 1000, 100, 20, 60.0, 10.0
    async with stage(members=members, channels=channels) as on:
        on.fal.default_script = JobScript(run_seconds=hold_s)
        bot = await spawn(
            on,
            "pikabot",
            settings={
                "fal_concurrency": 1000,
                "max_jobs_per_member": jobs // members,
                **OPEN_BUDGETS,
            },
        )
        loop = asyncio.get_running_loop()
        try:
            bot.start_window()
            started = loop.time()
            since = wall_to_monotonic(on.fake.now())
            interactions = await burst_on(on, jobs, send_s)
            await on.fake.wait_for(lambda: len(on.fal.submissions) >= jobs, timeout=hold_s + 120)
            in_flight = sum(
                1 for s in on.fal.submissions if on.fal.status_of(s.request_id) != "COMPLETED"
            )
            all_sent = loop.time() - started
            try:
                await on.fake.wait_for(lambda: len(on.videos()) >= jobs, timeout=hold_s + 300)
            except TimeoutError:
                pass
            elapsed = loop.time() - started
        finally:
            figures = await bot.stop()
        delivered = len(on.videos())
        latencies, misses = tally(on, interactions)
        edits, bookends = edit_times_by_channel(on, since)
        edit_count = sum(len(t) for t in edits.values())
        busiest = max((busiest_window(t, WINDOW_S) for t in edits.values()), default=0)
        limited = sum(1 for r in on.fake.requests if r.status == 429)
    rss, cpu, lag = figures["maxrss_mb"], figures["cpu_s"], figures["lag"]["p99_ms"]
    show(
        f"5. Scale: {jobs} jobs, {members} members, {channels} channels, fal holds each "
        f"{hold_s:g} s (one run)",
        [
            ("jobs at fal at once (after the last submit)", in_flight),
            ("seconds until every job was at fal", all_sent),
            ("delivered", f"{delivered} / {jobs}"),
            ("seconds from first command to last delivery", elapsed),
            ("peak RSS (MB)", rss),
            ("CPU seconds per job", cpu / jobs),
            ("loop lag p99 (ms)", lag),
            ("loop lag max (ms)", figures["lag"]["max_ms"]),
            ("ack p99 during the burst (ms)", ms(percentile(latencies, 99))),
            ("ack misses of 3 s", misses),
            ("progress edits per minute (all channels)", edit_count / (elapsed / 60)),
            ("first-reply and final edits (2 per job, not throttled)", bookends),
            (f"most progress edits in one channel in {WINDOW_S:g} s", busiest),
            ("429 answers from Discord", limited),
            ("target all delivered", verdict(delivered == jobs)),
            ("target RSS <= 250 MB", verdict(rss <= 250)),
            ("target loop lag p99 <= 100 ms", verdict(lag <= 100)),
            (
                f"target <= {EDITS_PER_WINDOW} progress edits per channel per {WINDOW_S:g} s",
                verdict(busiest <= EDITS_PER_WINDOW),
            ),
        ],
    )
    return {
        "delivered": delivered,
        "rss_mb": rss,
        "cpu_per_job_s": cpu / jobs,
        "lag_p99_ms": lag,
        "busiest_channel_edits": busiest,
    }
