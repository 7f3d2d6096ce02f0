"""Benchmark 2: requests PikaBot makes to fal per job, vs the official fal-client `subscribe`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import fal_client
import fal_client.client as fal_client_module
import httpx

from bench.harness import FAL_KEY, OPEN_BUDGETS, TINY_PREVIEW, Stage, spawn, stage
from bench.stats import median, show, verdict
from bot.emulator import FalEmulator, JobScript
from bot.sandbox.fakediscord import FakeInteraction

ENDPOINT = "fal-ai/pika/v2.5/text-to-video"
# Requests a client makes; "webhook" and "jwks" count the emulator's own calls, not the client's.
CLIENT_KINDS = ("submit", "status", "stream", "result", "cancel", "token", "upload", "file")


def client_requests(fal: FalEmulator) -> dict[str, int]:
    return {kind: fal.counts[kind] for kind in CLIENT_KINDS if fal.counts[kind]}


@contextlib.contextmanager
def fal_client_at(base_url: str) -> Iterator[None]:
    """Point the official client's queue, REST and CDN URLs at the emulator."""
    names = ("QUEUE_URL_FORMAT", "REST_URL", "CDN_URL")
    saved = {name: getattr(fal_client_module, name) for name in names}
    fal_client_module.QUEUE_URL_FORMAT = base_url + "/"
    fal_client_module.REST_URL = base_url
    fal_client_module.CDN_URL = base_url + "/cdn"
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(fal_client_module, name, value)


async def baseline_job(fal: FalEmulator) -> int:
    """fal's documented way: subscribe with logs and queue updates, then fetch the video."""
    client = fal_client.AsyncClient(key=FAL_KEY)
    updates = 0

    def on_update(_: Any) -> None:
        nonlocal updates
        updates += 1

    try:
        result = await client.subscribe(
            ENDPOINT, {"prompt": "a red fox in the snow"}, with_logs=True, on_queue_update=on_update
        )
        async with httpx.AsyncClient() as http:
            (await http.get(result["video"]["url"])).raise_for_status()
    finally:
        http_client: httpx.AsyncClient = await client._client
        await http_client.aclose()
    return updates


async def bot_job(on: Stage, waiting_s: float) -> tuple[int, int]:
    """One /pika text job to delivery: (progress edits during fal's wait, distinct texts)."""
    videos_before = len(on.videos())
    interaction = await on.command(
        on.members[0], on.channels[0], "pika text", {"prompt": "a red fox in the snow"}
    )
    await on.fake.wait_for(lambda: on.fal.submissions, timeout=30)
    request_id = on.fal.submissions[-1].request_id
    await on.fal.wait_for_status(request_id, "COMPLETED")
    edits = progress_edits(on, interaction)
    await on.fake.wait_for(lambda: len(on.videos()) > videos_before, timeout=waiting_s + 60)
    texts = {str(e) for e in edits}
    return len(edits), len(texts)


def progress_edits(on: Stage, interaction: FakeInteraction) -> list[Any]:
    """The embeds of every edit of the command's reply so far."""
    return [
        r.json.get("embeds")
        for r in on.fake.requests
        if r.method == "PATCH" and interaction.token in r.path and isinstance(r.json, dict)
    ]


async def run(*, quick: bool, reps: int) -> dict[str, Any]:
    queue_s, run_s = (3.0, 3.0) if quick else (30.0, 30.0)
    script = JobScript(queue_seconds=queue_s, queue_position=5, run_seconds=run_s)
    bot_counts: list[int] = []
    base_counts: list[int] = []
    edits: list[int] = []
    texts: list[int] = []
    async with (
        stage() as on,
        FalEmulator(key=FAL_KEY, preview=TINY_PREVIEW, data_dir=on.tmp) as other,
    ):
        bot = await spawn(on, "pikabot", settings=OPEN_BUDGETS)
        try:
            with fal_client_at(other.base_url):
                for rep in range(reps):
                    for emulator in (on.fal, other):
                        emulator.reset()
                        emulator.default_script = script
                    # Side by side: the bot's job and the baseline's wait at the same time.
                    (edit_count, text_count), updates = await asyncio.gather(
                        bot_job(on, queue_s + run_s), baseline_job(other)
                    )
                    ours, theirs = client_requests(on.fal), client_requests(other)
                    bot_counts.append(sum(ours.values()))
                    base_counts.append(sum(theirs.values()))
                    edits.append(edit_count)
                    texts.append(text_count)
                    print(
                        f"  rep {rep + 1}: PikaBot {sum(ours.values())} requests {ours}; "
                        f"fal-client {sum(theirs.values())} requests {theirs} "
                        f"({updates} queue updates); progress edits while waiting {edit_count} "
                        f"({text_count} different)",
                        flush=True,
                    )
        finally:
            await bot.stop()
    ours_med, theirs_med = median(bot_counts), median(base_counts)
    ratio = theirs_med / ours_med
    show(
        f"2. Requests to fal per job: {queue_s:g} s queued + {run_s:g} s running "
        f"(medians of {reps} jobs)",
        [
            ("PikaBot requests per job", ours_med),
            ("fal-client subscribe requests per job", theirs_med),
            ("baseline / PikaBot", ratio),
            ("progress edits during the wait", median(edits)),
            ("different progress texts shown", median(texts)),
            ("target <= 6 requests per job", verdict(ours_med <= 6)),
            ("target >= 50x fewer than the baseline", verdict(ratio >= 50)),
            ("target progress updates during the wait", verdict(median(texts) >= 2)),
        ],
    )
    return {"requests": ours_med, "baseline_requests": theirs_med, "ratio": ratio}
