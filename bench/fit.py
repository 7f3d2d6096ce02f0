"""Benchmark 4: re-encode a 10 s 1080p 25 MB preview under 10 MB, the loop staying responsive."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw

from bench.stats import LagProbe, median, show, verdict
from bot.media import fit_to_limit

MB = 1_000_000
MiB = 1024 * 1024
LIMIT = 10 * MiB  # Discord's default upload limit, as the bot's default_upload_limit
CACHE = Path("/tmp/pikabot-bench-cache")


def make_source(path: Path, *, seconds: int, width: int, height: int, target: int) -> int:
    """A busy H.264 clip (moving shapes on film grain) of about `target` bytes; its size."""
    fps = 25
    grain = [Image.effect_noise((width, height), 48).convert("RGB") for _ in range(4)]
    background = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    bitrate = int(target * 8 / seconds)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream(
            "libx264",
            rate=fps,
            options={
                "preset": "ultrafast",
                "maxrate": str(bitrate),
                "bufsize": str(bitrate),
            },
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bitrate
        stream.time_base = Fraction(1, fps)
        for n in range(seconds * fps):
            image = Image.blend(background, grain[n % len(grain)], 0.5)
            draw = ImageDraw.Draw(image)
            for k in range(6):
                x = (n * (7 + k * 3) + k * 300) % width
                y = (k * 170 + n * (2 + k)) % height
                draw.ellipse((x, y, x + 200, y + 160), fill=((k * 40) % 255, 120, 200 - k * 20))
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            frame.pts = n
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path.stat().st_size


def source(quick: bool) -> Path:
    """The input, made once and kept in /tmp (making it takes longer than fitting it)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if quick:
        path = CACHE / "preview-3s-540p-6MB.mp4"
        if not path.exists():
            make_source(path, seconds=3, width=960, height=540, target=6 * MB)
    else:
        path = CACHE / "preview-10s-1080p-25MB.mp4"
        if not path.exists():
            make_source(path, seconds=10, width=1920, height=1080, target=25 * MB)
    return path


async def fit_once(src: Path, limit: int) -> tuple[float, int, str, dict[str, float]]:
    """One fit as the bot runs it (in a thread), with the loop's lag measured meanwhile."""
    probe = LagProbe()
    probe.start()
    started = time.monotonic()
    dest = src.with_name("fitted.mp4")
    result = await asyncio.to_thread(fit_to_limit, src, dest, limit)
    took = time.monotonic() - started
    lag = probe.summary()
    await probe.stop()
    if result is None:
        return took, 0, "did not fit", lag
    dest.unlink()
    return took, result.size_bytes, f"{result.width}x{result.height}, {result.attempts} tries", lag


async def run(*, quick: bool, reps: int) -> dict[str, Any]:
    src = await asyncio.to_thread(source, quick)
    # The quick input is smaller, so it gets a smaller limit to force a real re-encode.
    limit = 2 * MiB if quick else LIMIT
    idle = LagProbe()
    idle.start()
    await asyncio.sleep(2)
    idle_lag = idle.summary()
    await idle.stop()
    times: list[float] = []
    sizes: list[float] = []
    lags: list[float] = []
    for rep in range(reps):
        took, size, what, lag = await fit_once(src, limit)
        times.append(took)
        sizes.append(size)
        lags.append(lag["p99_ms"])
        print(
            f"  rep {rep + 1}: {took:.1f} s -> {size / MiB:.2f} MiB ({what}); "
            f"loop lag p99 {lag['p99_ms']:.1f} ms, max {lag['max_ms']:.1f} ms",
            flush=True,
        )
    size_ok = all(0 < s < limit for s in sizes)
    show(
        f"4. Fit-to-limit: {src.name} ({src.stat().st_size / MiB:.1f} MiB) under "
        f"{limit / MiB:g} MiB (medians of {reps})",
        [
            ("re-encode time (s)", median(times)),
            ("output size (MiB)", median(sizes) / MiB),
            ("loop lag p99 during the encode (ms)", median(lags)),
            ("loop lag p99 idle, same process (ms)", idle_lag["p99_ms"]),
            ("target output under the limit", verdict(size_ok)),
            ("target loop lag p99 <= 100 ms", verdict(median(lags) <= 100)),
        ],
    )
    return {"seconds": median(times), "bytes": median(sizes), "lag_p99_ms": median(lags)}
