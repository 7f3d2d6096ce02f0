"""Fixtures for the fal emulator's tests: a running emulator, an authorised client, test media."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import av
import fal_client
import fal_client.client as fal_client_module
import httpx
import pytest
from PIL import Image, ImageDraw

from bot.emulator import FalEmulator, PreviewSettings

KEY = "test-key"
# Small and short: the tests check the shape of the video, not its beauty.
FAST_PREVIEW = PreviewSettings(short_side=64, fps=6, seconds=0.5)


@pytest.fixture
async def emu() -> AsyncIterator[FalEmulator]:
    async with FalEmulator(key=KEY, preview=FAST_PREVIEW, keepalive_seconds=0.05) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: FalEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=emu.base_url, headers={"Authorization": f"Key {KEY}"}, timeout=10
    ) as client:
        yield client


@pytest.fixture
async def fal(
    emu: FalEmulator, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[fal_client.AsyncClient]:
    """The official fal client, its queue, REST and CDN URLs pointed at the emulator."""
    monkeypatch.setenv("FAL_KEY", KEY)
    monkeypatch.setattr(fal_client_module, "QUEUE_URL_FORMAT", emu.base_url + "/")
    monkeypatch.setattr(fal_client_module, "REST_URL", emu.base_url)
    monkeypatch.setattr(fal_client_module, "CDN_URL", emu.base_url + "/cdn")
    client = fal_client.AsyncClient()
    yield client
    # fal_client never closes the httpx client it builds lazily; do it so no socket leaks.
    http_client: httpx.AsyncClient = await client._client
    await http_client.aclose()


def png_bytes(width: int, height: int, colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    image = Image.new("RGB", (width, height), colour)
    ImageDraw.Draw(image).ellipse([width // 4, height // 4, width * 3 // 4, height * 3 // 4])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def png_uri(
    width: int = 300, height: int = 300, colour: tuple[int, int, int] = (200, 40, 40)
) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(width, height, colour)).decode()


def mp4_bytes(width: int, height: int, frames: int = 8) -> bytes:
    """A tiny real H.264 clip, made independently of the emulator's renderer."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            image = Image.new("RGB", (width, height), (index * 30 % 255, 80, 160))
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def clip() -> bytes:
    return mp4_bytes(320, 240)


def video_shape(data: bytes) -> tuple[int, int, int]:
    """(width, height, decoded frame count) of an MP4, decoding every frame to prove it plays."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        count = sum(1 for _ in container.decode(stream))
        return stream.width, stream.height, count
