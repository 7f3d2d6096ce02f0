"""The official fal-client package runs jobs against the emulator: it speaks fal's protocol."""

from __future__ import annotations

from typing import Any

import fal_client
import httpx
import pytest

from bot.emulator import FalEmulator, JobScript

from .conftest import png_uri, video_shape


def _ratio(width: int, height: int) -> float:
    return width / height


async def _download(url: str) -> bytes:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
        response.raise_for_status()
        assert response.headers["content-type"] == "video/mp4"
        return response.content


TEXT = {"prompt": "a lighthouse in a storm"}
CASES: list[tuple[str, dict[str, Any], float]] = [
    ("fal-ai/pika/v2.5/text-to-video", {**TEXT, "resolution": "480p", "duration": 5}, 16 / 9),
    ("fal-ai/pika/v2.2/text-to-video", {**TEXT, "aspect_ratio": "9:16"}, 9 / 16),
    ("fal-ai/pika/v2.1/text-to-video", {**TEXT, "aspect_ratio": "1:1"}, 1.0),
    ("fal-ai/pika/v2/turbo/text-to-video", {**TEXT, "aspect_ratio": "4:5"}, 4 / 5),
    ("fal-ai/pika/v2.2/image-to-video", {**TEXT, "image_url": png_uri(300, 400)}, 3 / 4),
    ("fal-ai/pika/v2.1/image-to-video", {**TEXT, "image_url": png_uri(400, 300)}, 4 / 3),
    ("fal-ai/pika/v2/turbo/image-to-video", {**TEXT, "image_url": png_uri(256, 256)}, 1.0),
    (
        "fal-ai/pika/v2.2/pikaframes",
        {
            "image_urls": [png_uri(400, 300), png_uri(400, 300, (0, 0, 200))],
            "transitions": [{"duration": 5, "prompt": "morph"}],
        },
        4 / 3,
    ),
    (
        "fal-ai/pika/v2.2/pikascenes",
        {"prompt": "a picnic", "image_urls": [png_uri(), png_uri()], "aspect_ratio": "3:2"},
        3 / 2,
    ),
    (
        "fal-ai/pika/v1.5/pikaffects",
        {"image_url": png_uri(300, 500), "pikaffect": "Melt"},
        3 / 5,
    ),
]


@pytest.mark.parametrize(("endpoint", "arguments", "ratio"), CASES, ids=[c[0] for c in CASES])
async def test_fal_client_gets_a_playable_video_at_the_right_aspect_ratio(
    fal: fal_client.AsyncClient, endpoint: str, arguments: dict[str, Any], ratio: float
) -> None:
    updates: list[Any] = []
    result = await fal.subscribe(
        endpoint,
        arguments,
        with_logs=True,
        interval=0.01,
        on_queue_update=updates.append,
    )

    video = result["video"]
    data = await _download(video["url"])
    assert video["file_size"] == len(data)
    assert video["content_type"] == "video/mp4"
    width, height, frames = video_shape(data)
    assert frames > 1
    assert _ratio(width, height) == pytest.approx(ratio, rel=0.05)
    assert isinstance(updates[-1], fal_client.Completed)
    assert updates[-1].error is None


@pytest.mark.parametrize("endpoint", ["fal-ai/pika/v2/pikaswaps", "fal-ai/pika/v2/pikadditions"])
async def test_fal_client_runs_video_modes_on_an_uploaded_clip(
    fal: fal_client.AsyncClient, emu: FalEmulator, clip: bytes, endpoint: str
) -> None:
    clip_url = await fal.upload(clip, "video/mp4", "clip.mp4")
    assert clip_url.startswith(emu.base_url + "/cdn/files/")

    result = await fal.subscribe(
        endpoint,
        {"video_url": clip_url, "image_url": png_uri(), "prompt": "a red balloon"},
        interval=0.01,
    )

    width, height, _ = video_shape(await _download(result["video"]["url"]))
    assert _ratio(width, height) == pytest.approx(320 / 240, rel=0.05)
    assert emu.counts["upload"] == 1
    assert emu.counts["token"] == 1


async def test_fal_client_legacy_storage_upload_round_trips(
    fal: fal_client.AsyncClient, emu: FalEmulator
) -> None:
    url = await fal.upload(b"hello emulator", "text/plain", "hello.txt", repository="fal")

    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.content == b"hello emulator"
    assert emu.counts["upload"] == 1
    assert emu.counts["file"] == 1


async def test_fal_client_sees_a_model_error_as_422_with_a_detail_list(
    fal: fal_client.AsyncClient, emu: FalEmulator
) -> None:
    emu.script_next(JobScript(outcome="model_error", error_message="flagged"))

    with pytest.raises(fal_client.client.FalClientHTTPError) as caught:
        await fal.subscribe("fal-ai/pika/v2.5/text-to-video", TEXT, interval=0.01)

    assert caught.value.status_code == 422
    message: object = caught.value.message
    assert message == [
        {"loc": ["body", "prompt"], "msg": "flagged", "type": "content_policy_violation"}
    ]


async def test_fal_client_cancels_a_queued_request(
    fal: fal_client.AsyncClient, emu: FalEmulator
) -> None:
    emu.script_next(JobScript(hold_in_queue=True))
    handle = await fal.submit("fal-ai/pika/v2.5/text-to-video", TEXT)

    await handle.cancel()
    await emu.wait_for_status(handle.request_id, "COMPLETED")

    status = await handle.status(with_logs=True)
    assert isinstance(status, fal_client.Completed)
    assert status.error_type == "request_cancelled"


async def test_fal_client_status_reports_the_queue_position(
    fal: fal_client.AsyncClient, emu: FalEmulator
) -> None:
    emu.script_next(JobScript(queue_position=3, queue_seconds=60, hold_in_queue=True))
    handle = await fal.submit("fal-ai/pika/v2.5/text-to-video", TEXT)

    status = await handle.status()

    assert status == fal_client.Queued(position=3)
    assert await emu.advance(handle.request_id) == "IN_PROGRESS"
    assert isinstance(await handle.status(with_logs=True), fal_client.InProgress)
