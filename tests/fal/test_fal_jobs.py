"""Whole jobs through the fal client against the emulator: stream, polling, cancel, counts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bot.emulator import FalEmulator, Fault, JobScript
from bot.fal import (
    CancelOutcome,
    Completed,
    FalClient,
    InProgress,
    Queued,
    RequestHandle,
    Status,
)

from .fal_support import RecordingSleep, png_bytes

TEXT_ENDPOINTS = [
    "fal-ai/pika/v2.5/text-to-video",
    "fal-ai/pika/v2.2/text-to-video",
    "fal-ai/pika/v2.1/text-to-video",
    "fal-ai/pika/v2/turbo/text-to-video",
]
IMAGE_ENDPOINTS = [
    "fal-ai/pika/v2.2/image-to-video",
    "fal-ai/pika/v2.1/image-to-video",
    "fal-ai/pika/v2/turbo/image-to-video",
]
VIDEO_ENDPOINTS = ["fal-ai/pika/v2/pikaswaps", "fal-ai/pika/v2/pikadditions"]
POLL = 7.0


async def collect(fal: FalClient, handle: RequestHandle, **options: Any) -> list[Status]:
    # A safety net so a watch that never ends fails the test instead of hanging it.
    async with asyncio.timeout(20):
        return [status async for status in fal.watch(handle, **options)]


async def run_text_job(fal: FalClient) -> str:
    """Run one text job to the end and return its video URL, to feed the video endpoints."""
    handle = await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "a red fox"})
    await collect(fal, handle, poll_interval=POLL)
    return (await fal.result(handle)).video.url


async def body_for(endpoint_id: str, fal: FalClient, png_uri: str) -> dict[str, Any]:
    if endpoint_id in TEXT_ENDPOINTS:
        return {"prompt": "a paper boat on a pond", "duration": 5, "resolution": "720p"}
    if endpoint_id in IMAGE_ENDPOINTS:
        return {"image_url": png_uri, "prompt": "the camera drifts closer"}
    if endpoint_id == "fal-ai/pika/v2.2/pikaframes":
        second = await fal.file_input(
            png_bytes(color="navy"), "image/png", max_data_uri_bytes=1_000_000
        )
        return {"image_urls": [png_uri, second], "prompt": "day turns to night"}
    if endpoint_id == "fal-ai/pika/v2.2/pikascenes":
        return {"image_urls": [png_uri], "prompt": "a picnic", "ingredients_mode": "precise"}
    if endpoint_id == "fal-ai/pika/v1.5/pikaffects":
        return {"image_url": png_uri, "pikaffect": "Melt"}
    video_url = await run_text_job(fal)
    if endpoint_id == "fal-ai/pika/v2/pikaswaps":
        return {"video_url": video_url, "prompt": "a straw hat", "modify_region": "the hat"}
    return {"video_url": video_url, "image_url": png_uri, "prompt": "a small dog"}


@pytest.mark.parametrize(
    "endpoint_id",
    [
        *TEXT_ENDPOINTS,
        *IMAGE_ENDPOINTS,
        "fal-ai/pika/v2.2/pikaframes",
        "fal-ai/pika/v2.2/pikascenes",
        "fal-ai/pika/v1.5/pikaffects",
        *VIDEO_ENDPOINTS,
    ],
)
async def test_every_endpoint_streams_to_a_video_that_downloads_as_mp4(
    endpoint_id: str, fal: FalClient, emu: FalEmulator, png_uri: str
) -> None:
    body = await body_for(endpoint_id, fal, png_uri)
    streams_before = emu.counts["stream"]

    handle = await fal.submit(endpoint_id, body)
    statuses = await collect(fal, handle, poll_interval=POLL)
    result = await fal.result(handle)

    assert handle.endpoint_id == endpoint_id
    assert emu.submissions[-1].body == body
    final = statuses[-1]
    assert isinstance(final, Completed)
    assert final.ok
    assert emu.counts["stream"] == streams_before + 1
    assert emu.counts["status"] == 0  # the stream alone followed the job
    async with httpx.AsyncClient() as http:
        download = await http.get(result.video.url)
    assert download.status_code == 200
    assert download.content[4:8] == b"ftyp"


async def test_submit_sends_user_agent_and_optional_headers(
    fal: FalClient, emu: FalEmulator
) -> None:
    await fal.submit("fal-ai/pika/v2.5/text-to-video", {"prompt": "waves"}, start_timeout=30)
    headers = {k.lower(): v for k, v in emu.submissions[-1].headers.items()}
    assert headers["user-agent"].startswith("pikabot/")
    assert headers["x-fal-request-timeout"] == "30"


async def test_submit_returns_the_urls_fal_gave(
    fal: FalClient, emu: FalEmulator, png_uri: str
) -> None:
    body = {"prompt": "a kite", "image_url": png_uri}
    handle = await fal.submit("fal-ai/pika/v2.2/image-to-video", body)
    rebuilt = fal.handle_for(handle.endpoint_id, handle.request_id)
    assert handle.request_id == emu.submissions[-1].request_id
    assert (handle.status_url, handle.response_url, handle.cancel_url) == (
        rebuilt.status_url,
        rebuilt.response_url,
        rebuilt.cancel_url,
    )


async def test_a_streamed_job_costs_a_handful_of_requests(fal: FalClient, emu: FalEmulator) -> None:
    handle = await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "rain"})
    await collect(fal, handle, poll_interval=POLL)
    await fal.result(handle)

    queue_requests = sum(emu.counts[k] for k in ("submit", "status", "stream", "result"))
    assert queue_requests == 3  # submit, one stream, result


def advance_on_poll(
    emu: FalEmulator, sleeps: RecordingSleep, request_id: Callable[[], str]
) -> None:
    """Make each poll-interval wait move the held job one stage forward, instead of real time."""

    async def on_sleep(seconds: float) -> None:
        if seconds == POLL:
            await emu.advance(request_id())

    sleeps.on_sleep = on_sleep


async def test_polling_follows_the_job_when_the_stream_is_refused(
    fal: FalClient, emu: FalEmulator, sleeps: RecordingSleep
) -> None:
    emu.script_next(JobScript(hold_in_queue=True, hold_in_progress=True))
    emu.inject(Fault(kind="stream", status=404, times=5))
    handle = await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "snow"})
    advance_on_poll(emu, sleeps, lambda: handle.request_id)

    statuses = await collect(fal, handle, poll_interval=POLL)
    result = await fal.result(handle)

    assert [type(s) for s in statuses] == [Queued, InProgress, Completed]
    assert sleeps.delays == [POLL, POLL]  # never faster than the interval
    assert emu.counts["stream"] == 1  # a refusal is not worth reconnecting
    assert emu.counts["status"] == len(statuses)
    assert result.video.url


async def test_a_stream_that_keeps_dropping_is_retried_a_few_times_then_polled(
    fal: FalClient, emu: FalEmulator, sleeps: RecordingSleep
) -> None:
    emu.script_next(JobScript(hold_in_queue=True, hold_in_progress=True))
    emu.inject(Fault(kind="stream", reset=True, times=50))
    handle = await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "fog"})
    advance_on_poll(emu, sleeps, lambda: handle.request_id)

    statuses = await collect(fal, handle, poll_interval=POLL, stream_reconnects=2)

    assert isinstance(statuses[-1], Completed)
    assert emu.counts["stream"] == 3  # first try plus two reconnects
    assert all(delay < POLL for delay in sleeps.delays[:2])  # reconnect backoff
    assert sleeps.delays[2:] == [POLL] * (len(sleeps.delays) - 2)
    assert (await fal.result(handle)).video.url


async def test_a_stream_broken_mid_job_reconnects_and_does_not_lose_the_job(
    fal: FalClient, emu: FalEmulator
) -> None:
    emu.script_next(JobScript(hold_in_queue=True, hold_in_progress=True, stream_break_after=1))
    handle = await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "storm"})
    seen: asyncio.Queue[Status] = asyncio.Queue()

    async def follow() -> None:
        # A generous reconnect budget: every log line also ends a stream in this script.
        async for status in fal.watch(handle, poll_interval=POLL, stream_reconnects=20):
            seen.put_nowait(status)

    # A safety net against a hang, not a timing assertion.
    async with asyncio.timeout(20):
        follower = asyncio.create_task(follow())
        assert isinstance(await seen.get(), Queued)
        await emu.advance(handle.request_id)  # the emulator drops the stream on this change
        assert isinstance(await seen.get(), InProgress)  # ...and a new stream picks it up
        await emu.advance(handle.request_id)
        status = await seen.get()
        while not isinstance(status, Completed):
            status = await seen.get()
        await follower

    assert emu.counts["stream"] >= 3
    assert emu.counts["status"] == 0
    assert (await fal.result(handle)).video.url


async def test_polling_only_when_asked_not_to_stream(fal: FalClient, emu: FalEmulator) -> None:
    handle = await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "sun"})
    await emu.wait_for_status(handle.request_id, "COMPLETED")

    statuses = await collect(fal, handle, poll_interval=POLL, stream=False)

    assert len(statuses) == 1
    assert isinstance(statuses[0], Completed)
    assert emu.counts["stream"] == 0
    assert emu.counts["status"] == 1


async def test_cancel_of_a_queued_request_is_requested(fal: FalClient, emu: FalEmulator) -> None:
    emu.script_next(JobScript(hold_in_queue=True))
    handle = await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "late"})

    assert await fal.cancel(handle) is CancelOutcome.REQUESTED


async def test_cancel_of_a_finished_request_is_too_late(fal: FalClient, emu: FalEmulator) -> None:
    handle = await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "done"})
    await collect(fal, handle, poll_interval=POLL)

    assert await fal.cancel(handle) is CancelOutcome.ALREADY_COMPLETED


async def test_cancel_of_an_unknown_request_is_not_found(fal: FalClient) -> None:
    handle = fal.handle_for("fal-ai/pika/v2.2/text-to-video", "no-such-request")

    assert await fal.cancel(handle) is CancelOutcome.NOT_FOUND


async def test_a_rebuilt_handle_follows_a_stored_request(fal: FalClient, emu: FalEmulator) -> None:
    submitted = await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "restart"})
    rebuilt = fal.handle_for(submitted.endpoint_id, submitted.request_id)

    statuses = await collect(fal, rebuilt, poll_interval=POLL)

    assert isinstance(statuses[-1], Completed)
    assert (await fal.result(rebuilt)).video.url


async def test_a_stream_answered_503_is_reconnected_not_abandoned(
    fal: FalClient, emu: FalEmulator
) -> None:
    emu.inject(Fault(kind="stream", status=503))
    handle = await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "hail"})

    statuses = await collect(fal, handle, poll_interval=POLL)

    assert isinstance(statuses[-1], Completed)
    assert emu.counts["stream"] == 2
    assert emu.counts["status"] == 0
