"""Benchmark 8: what discord.py's view store holds after 1,000 jobs (their buttons' memory)."""

from __future__ import annotations

from typing import Any

from bench.ack import burst_on
from bench.harness import OPEN_BUDGETS, spawn, stage
from bench.stats import show, verdict
from bot.emulator import JobScript


async def run(*, quick: bool, reps: int) -> dict[str, Any]:
    # One run: the figure is a count, not a time, so repetitions would only repeat it.
    jobs, members, channels, send_s = (100, 10, 5, 2.0) if quick else (1000, 100, 20, 10.0)
    async with stage(members=members, channels=channels) as on:
        on.fal.default_script = JobScript(run_seconds=0.5)
        bot = await spawn(
            on,
            "pikabot",
            settings={
                "fal_concurrency": jobs,
                "max_jobs_per_member": 100,
                **OPEN_BUDGETS,
            },
        )
        try:
            bot.start_window()
            commands = await burst_on(on, jobs, send_s)
            try:
                await on.fake.wait_for(lambda: len(on.videos()) >= jobs, timeout=600)
            except TimeoutError:
                pass
        finally:
            figures = await bot.stop()
        delivered = len(on.videos())
        refused = [
            (c.original.content if c.original else "")
            for c in commands
            if c.response is not None and c.response.type == 4
        ]
    views = figures["views"]
    # Every job sent two messages with buttons: its progress reply (Cancel) and its video.
    show(
        f"8. View store: {jobs} jobs from {members} members in {channels} channels (one run)",
        [
            ("delivered", f"{delivered} / {jobs}"),
            ("refused", f"{len(refused)} {sorted(set(refused))[:3]}"),
            ("messages with buttons sent", 2 * delivered),
            ("views discord.py keeps per message", views["message_views"]),
            ("component dispatch entries kept", views["dispatch_entries"]),
            ("dynamic item classes registered", views["dynamic_item_classes"]),
            ("modals kept", views["modals"]),
            ("peak RSS (MB)", figures["maxrss_mb"]),
            ("target all delivered", verdict(delivered == jobs)),
            ("target no view kept per message", verdict(views["message_views"] == 0)),
        ],
    )
    return {"delivered": delivered, "rss_mb": figures["maxrss_mb"], **views}
