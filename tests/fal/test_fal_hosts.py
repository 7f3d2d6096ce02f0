"""The fal key goes only to the configured fal host: URLs in a submit answer (or a stored handle)
that point elsewhere are rebuilt from the request id on the configured host, never followed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from bot.emulator import FalEmulator, JobScript
from bot.fal import CancelOutcome, Completed, FalClient

from .fal_support import KEY

ENDPOINT = "fal-ai/pika/v2.2/text-to-video"


@dataclass
class OtherHost:
    """A server on another address that records every request it gets (and answers 404)."""

    base_url: str = ""
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, Authorization

    @property
    def keyed(self) -> list[tuple[str, str, str]]:
        return [request for request in self.seen if KEY in request[2]]


@pytest.fixture
async def other_host() -> AsyncIterator[OtherHost]:
    host = OtherHost()

    async def record(request: web.Request) -> web.Response:
        host.seen.append((request.method, request.path, request.headers.get("Authorization", "")))
        return web.json_response({"detail": "not here"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    # "localhost", not the emulator's 127.0.0.1: another host name as well as another port.
    host.base_url = f"http://localhost:{port}"
    try:
        yield host
    finally:
        await runner.cleanup()


async def test_a_submit_answer_pointing_elsewhere_is_rebuilt_on_the_fal_host(
    emu: FalEmulator, fal: FalClient, other_host: OtherHost
) -> None:
    emu.script_next(JobScript(handle_base_url=other_host.base_url))
    handle = await fal.submit(ENDPOINT, {"prompt": "a lighthouse"})

    rebuilt = fal.handle_for(ENDPOINT, handle.request_id)
    assert (handle.status_url, handle.response_url, handle.cancel_url) == (
        rebuilt.status_url,
        rebuilt.response_url,
        rebuilt.cancel_url,
    )
    async with asyncio.timeout(20):
        statuses = [status async for status in fal.watch(handle, poll_interval=1.0)]
    assert isinstance(statuses[-1], Completed)
    assert (await fal.result(handle)).video.url
    assert other_host.seen == []


async def test_a_stored_handle_on_another_host_never_gets_the_key(
    emu: FalEmulator, fal: FalClient, other_host: OtherHost
) -> None:
    emu.script_next(JobScript(hold_in_queue=True))
    handle = await fal.submit(ENDPOINT, {"prompt": "a lighthouse"})
    elsewhere = f"{other_host.base_url}/fal-ai/pika/requests/{handle.request_id}"
    foreign = dataclasses.replace(
        handle,
        status_url=f"{elsewhere}/status",
        response_url=elsewhere,
        cancel_url=f"{elsewhere}/cancel",
    )

    await fal.status(foreign)
    assert await fal.cancel(foreign) is CancelOutcome.REQUESTED
    assert other_host.keyed == []
    assert other_host.seen == []
