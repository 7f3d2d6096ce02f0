"""Benchmark 7: intake memory while 20 members each send 10 six-image /pika scenes at once."""

from __future__ import annotations

import asyncio
import struct
import zlib
from typing import Any

from bench.harness import OPEN_BUDGETS, at_rate, spawn, stage
from bench.stats import show, verdict
from bot.emulator import JobScript
from bot.sandbox.fakediscord import FakeInteraction

MiB = 1024 * 1024


def big_png(side: int, size: int) -> bytes:
    """A valid side×side RGB PNG of about `size` bytes: the pixels compress to little, a private
    ancillary chunk (which decoders skip) makes up the rest, so the file is as heavy to hold
    as a camera export and as heavy to decode as its pixel count."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    squeeze = zlib.compressobj(1)
    row = b"\x00" + bytes([90, 140, 200]) * side
    idat = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
    body = chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    padding = max(0, size - len(head) - len(body) - 12)
    return head + chunk(b"pkPd", bytes(padding)) + body


async def run(*, quick: bool, reps: int) -> dict[str, Any]:
    # One run: the full scale moves about 5 GB over loopback. fal's concurrency stays at its
    # default (4), so the figure is intake's, not 40 jobs uploading their inputs to fal at once.
    if quick:
        members, per_member, images, side, size = 4, 4, 2, 2000, 2 * MiB
    else:
        members, per_member, images, side, size = 20, 10, 6, 7000, 20 * MiB - 4096
    limit, concurrency = 2, 4
    data = await asyncio.to_thread(big_png, side, size)
    commands = members * per_member
    async with stage(members=members) as on:
        on.fal.default_script = JobScript(hold_in_queue=True)
        bot = await spawn(
            on,
            "pikabot",
            settings={
                "max_jobs_per_member": limit,
                "intake_concurrency": concurrency,
                **OPEN_BUDGETS,
            },
        )
        loop = asyncio.get_running_loop()
        try:
            bot.start_window()
            started = loop.time()

            async def one(i: int) -> FakeInteraction:
                member = on.members[i % members]
                files = {
                    # Every attachment serves the same bytes object: the fake holds one copy.
                    f"image{n}": on.fake.attachment(data, f"big{n}.png", None, side, side)
                    for n in range(1, images + 1)
                }
                return await on.command(
                    member, on.channels[0], "pika scenes", {**files, "prompt": f"take {i}"}
                )

            interactions = await at_rate(commands, 0.5, one)

            def settled(i: FakeInteraction) -> bool:
                # Refused at once, or deferred and then shown as a job (or refused after all).
                if i.response is None:
                    return False
                original = i.original
                return i.response.type == 4 or (
                    original is not None and (original.deleted or bool(original.embeds))
                )

            def answered() -> bool:
                return all(settled(i) for i in interactions)

            await on.fake.wait_for(answered, timeout=600)
            elapsed = loop.time() - started
        finally:
            figures = await bot.stop()
        refused_early = sum(
            1 for i in interactions if i.response is not None and i.response.type == 4
        )
        downloads = sum(
            r.status == 200 for r in on.fake.requests if not r.api and r.method == "GET"
        )
        jobs = sum(
            1
            for i in interactions
            if i.original is not None and not i.original.deleted and i.original.embeds
        )
    rss = figures["maxrss_mb"]
    show(
        f"7. Intake: {members} members × {per_member} /pika scenes with {images} images of "
        f"{size / MiB:.0f} MiB ({side}×{side} px) at once; max_jobs_per_member={limit}, "
        f"intake_concurrency={concurrency} (one run)",
        [
            ("commands", commands),
            ("jobs accepted", jobs),
            ("refused before the defer (nothing downloaded)", refused_early),
            ("attachments downloaded", f"{downloads} (of {commands * images} sent)"),
            ("seconds until every command was answered", elapsed),
            ("peak RSS (MB)", rss),
            ("loop lag p99 (ms)", figures["lag"]["p99_ms"]),
            (
                "target: only the accepted jobs' files downloaded",
                verdict(downloads <= jobs * images),
            ),
        ],
    )
    return {"rss_mb": rss, "jobs": jobs, "downloads": downloads, "seconds": elapsed}
