"""Benchmark 3: from fal COMPLETED to the video at Discord, PikaBot vs a bare download+upload."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bench.harness import FAL_KEY, OPEN_BUDGETS, BotProcess, Stage, spawn, stage, wall_to_monotonic
from bench.stats import median, ms, show, verdict
from bot.emulator import JobScript

MB = 1_000_000


def _video_posts(on: Stage) -> list[float]:
    """When the fake received each request that carried an MP4 (monotonic), oldest first."""
    return [
        wall_to_monotonic(r.at)
        for r in on.fake.requests
        if r.files and any(f.filename.endswith(".mp4") for f in r.files) and r.status < 300
    ]


async def bot_once(on: Stage, size: int) -> tuple[float, str]:
    """A job whose result is `size` bytes: seconds from COMPLETED to the post, and its URL."""
    posts_before = len(_video_posts(on))
    on.fal.script_next(JobScript(run_seconds=0.2, output_size=size))
    submitted = len(on.fal.submissions)
    await on.command(on.members[0], on.channels[0], "pika text", {"prompt": "a red fox"})
    await on.fake.wait_for(lambda: len(on.fal.submissions) > submitted, timeout=30)
    request_id = on.fal.submissions[-1].request_id
    await on.fake.wait_for(lambda: len(_video_posts(on)) > posts_before, timeout=60)
    # The emulator stamps COMPLETED with time.monotonic(), the clock every process shares.
    completed_at = on.fal._job(request_id).completed_at
    assert completed_at is not None
    url = await _result_url(on, request_id)
    return _video_posts(on)[posts_before] - completed_at, url


async def _result_url(on: Stage, request_id: str) -> str:
    async with httpx.AsyncClient(headers={"Authorization": f"Key {FAL_KEY}"}) as http:
        response = await http.get(f"{on.fal.base_url}/fal-ai/pika/requests/{request_id}")
        response.raise_for_status()
        return str(response.json()["video"]["url"])


async def baseline_once(on: Stage, uploader: BotProcess, url: str) -> float:
    """The uploader downloads `url` and posts it: seconds from its start to the post."""
    process = uploader.process
    assert process.stdin is not None
    assert process.stdout is not None
    posts_before = len(_video_posts(on))
    order = {"url": url, "channel_id": on.channels[0].id}
    process.stdin.write((json.dumps(order) + "\n").encode())
    await process.stdin.drain()
    answer = json.loads(await process.stdout.readline())
    await on.fake.wait_for(lambda: len(_video_posts(on)) > posts_before, timeout=60)
    return _video_posts(on)[posts_before] - float(answer["started"])


async def run(*, quick: bool, reps: int) -> dict[str, Any]:
    sizes = [2 * MB, 9 * MB]
    ours: dict[int, list[float]] = {size: [] for size in sizes}
    theirs: dict[int, list[float]] = {size: [] for size in sizes}
    async with stage() as on:
        bot = await spawn(on, "pikabot", settings=OPEN_BUDGETS)
        uploader = await spawn(on, "uploader", pipes=True)
        try:
            assert uploader.process.stdout is not None
            ready = await uploader.process.stdout.readline()
            if not ready:
                raise RuntimeError(f"the uploader did not start:\n{uploader.log_tail()}")
            for size in sizes:
                # One unmeasured round each: connections open, code paths warm.
                _, url = await bot_once(on, size)
                await baseline_once(on, uploader, url)
                for rep in range(reps):
                    first, second = ("bot", "base") if rep % 2 == 0 else ("base", "bot")
                    for who in (first, second):
                        if who == "bot":
                            took, url = await bot_once(on, size)
                            ours[size].append(took)
                        else:
                            theirs[size].append(await baseline_once(on, uploader, url))
                    print(
                        f"  {size / MB:g} MB rep {rep + 1}: PikaBot {ms(ours[size][-1]):7.1f} ms"
                        f"  baseline {ms(theirs[size][-1]):7.1f} ms",
                        flush=True,
                    )
        finally:
            await uploader.stop()
            await bot.stop()
    rows: list[tuple[str, object]] = []
    ratios = {}
    for size in sizes:
        ratio = median(ours[size]) / median(theirs[size])
        ratios[size] = ratio
        rows += [
            (f"{size / MB:g} MB PikaBot (ms)", ms(median(ours[size]))),
            (f"{size / MB:g} MB baseline (ms)", ms(median(theirs[size]))),
            (f"{size / MB:g} MB ratio to baseline", ratio),
        ]
    rows.append(("target <= 1.3x baseline", verdict(all(r <= 1.3 for r in ratios.values()))))
    show(f"3. Delivery: fal COMPLETED -> video at Discord (medians of {reps})", rows)
    return {f"{size // MB}MB_ratio": ratio for size, ratio in ratios.items()}
