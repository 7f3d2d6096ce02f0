"""Watching a request at fal: its statuses, cut short when a verified webhook says it ended."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TypeVar

from bot.fal import Completed, FalClient, FalPlatformError, RequestHandle, Status

log = logging.getLogger(__name__)

T = TypeVar("T")


class Watching:
    """The requests being watched at fal, each with the event a webhook sets (see wake)."""

    def __init__(self, fal: FalClient, *, poll_interval: float) -> None:
        self._fal = fal
        self._poll_interval = poll_interval
        # Set by a verified fal webhook for the request a job is watching.
        self._woken: dict[str, asyncio.Event] = {}

    def wake(self, request_id: str) -> bool:
        """fal says (by a verified webhook) the request finished: look at once, not at the next
        poll. False when no job here is watching that request."""
        woken = self._woken.get(request_id)
        if woken is None:
            return False
        woken.set()
        return True

    async def statuses(self, handle: RequestHandle) -> AsyncIterator[Status]:
        """The request's statuses until Completed: fal's stream or polling, cut short by wake().

        Woken, the watch is dropped and the status asked once; fal's queue, not the webhook's
        payload, says how the request ended. Without webhooks this is just fal.watch.
        """
        woken = self._woken.setdefault(handle.request_id, asyncio.Event())
        while True:
            ended: Completed | None = None
            watch = self._fal.watch(handle, poll_interval=self._poll_interval)
            # Closed before the end is reported, so no stream outlives the watch.
            async with aclosing(_until(watch, woken)) as statuses:
                async for status in statuses:
                    if isinstance(status, Completed):
                        ended = status
                        break
                    yield status
            if ended is not None:
                yield ended
                return
            if not woken.is_set():
                return
            woken.clear()
            try:
                status = await self._fal.status(handle)
            except FalPlatformError as error:
                if not error.retryable:
                    raise
                log.warning(
                    "fal status of %s failed after its webhook: %s", handle.request_id, error
                )
                continue
            yield status
            if isinstance(status, Completed):
                return
            # The webhook came before fal's queue says so: go on watching.

    def forget(self, request_id: str) -> None:
        """The request is no longer watched: a webhook for it finds nobody."""
        self._woken.pop(request_id, None)


async def _until(items: AsyncIterator[T], stop: asyncio.Event) -> AsyncGenerator[T, None]:
    """The items of `items` until `stop` is set; the item being waited for then is abandoned.

    `items` is closed on the way out.
    """
    stopped = asyncio.ensure_future(stop.wait())
    step: asyncio.Future[T] | None = None
    try:
        while not stop.is_set():
            step = asyncio.ensure_future(anext(items))
            await asyncio.wait({step, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                return
            finished, step = step, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        stopped.cancel()
        if step is not None and not step.done():
            step.cancel()
            # A generator must have stopped running before it can be closed.
            await asyncio.wait({step})
        if isinstance(items, AsyncGenerator):
            await items.aclose()
