"""Shared pieces of the fal client tests: the test key, fast settings, a recording sleep, images."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable

from PIL import Image

from bot.fal import FalTimeouts, RetryPolicy

KEY = "test-key"
# Short enough to keep tests fast, long enough that a loaded machine does not time out.
TIMEOUTS = FalTimeouts(connect=2.0, read=3.0, write=3.0, pool=2.0, stream_read=5.0, upload=5.0)
RETRY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=4.0, max_retry_after=30.0)


class RecordingSleep:
    """Stands in for asyncio.sleep: records each requested wait and returns at once.

    `on_sleep` lets a test move the emulator forward exactly when the client would wait.
    """

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.on_sleep: Callable[[float], Awaitable[None]] | None = None

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.on_sleep is not None:
            await self.on_sleep(seconds)
        await asyncio.sleep(0)


def png_bytes(width: int = 64, height: int = 48, color: str = "orange") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()
