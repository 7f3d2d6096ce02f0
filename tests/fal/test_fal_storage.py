"""Uploads to fal's storage through the client: token caching, round trip, data URI choice."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable

import httpx

from bot.emulator import FalEmulator
from bot.fal import Completed, FalClient

from .fal_support import png_bytes


async def test_upload_returns_a_url_serving_the_same_bytes(
    fal: FalClient, emu: FalEmulator
) -> None:
    data = png_bytes(color="teal")

    url = await fal.upload(data, "image/png", file_name="teal.png")

    async with httpx.AsyncClient() as http:
        served = await http.get(url)
    assert served.status_code == 200
    assert served.content == data
    assert (emu.counts["token"], emu.counts["upload"]) == (1, 1)


async def test_the_storage_token_is_reused_until_near_expiry(
    make_client: Callable[..., FalClient], emu: FalEmulator
) -> None:
    now = [time.time()]
    async with make_client(clock=lambda: now[0]) as fal:
        await fal.upload(b"one", "text/plain")
        await fal.upload(b"two", "text/plain")
        assert emu.counts["token"] == 1

        now[0] += 10 * 365 * 24 * 3600  # far past any expiry the token can carry
        await fal.upload(b"three", "text/plain")

    assert emu.counts["token"] == 2
    assert emu.counts["upload"] == 3


async def test_a_small_file_becomes_a_data_uri_without_uploading(
    fal: FalClient, emu: FalEmulator
) -> None:
    data = png_bytes()

    value = await fal.file_input(data, "image/png", max_data_uri_bytes=len(data))

    prefix = "data:image/png;base64,"
    assert value.startswith(prefix)
    assert base64.b64decode(value[len(prefix) :]) == data
    assert emu.counts["upload"] == 0


async def test_a_large_file_is_uploaded_and_given_as_a_url(
    fal: FalClient, emu: FalEmulator
) -> None:
    data = png_bytes(width=256, height=256)

    value = await fal.file_input(data, "image/png", max_data_uri_bytes=len(data) - 1)

    assert value.startswith(emu.base_url)
    assert emu.counts["upload"] == 1


async def test_an_uploaded_image_is_accepted_as_a_job_input(
    fal: FalClient, emu: FalEmulator
) -> None:
    url = await fal.file_input(png_bytes(), "image/png", max_data_uri_bytes=0)
    handle = await fal.submit(
        "fal-ai/pika/v2.2/image-to-video", {"image_url": url, "prompt": "a slow pan"}
    )

    async with asyncio.timeout(20):  # a safety net against a hang, not a timing assertion
        statuses = [s async for s in fal.watch(handle, poll_interval=7.0)]

    final = statuses[-1]
    assert isinstance(final, Completed)
    assert final.ok
    assert (await fal.result(handle)).video.url
