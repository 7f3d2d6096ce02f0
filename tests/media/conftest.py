"""Builders for the images and videos the media tests feed to bot.media, all made in code."""

from __future__ import annotations

import io
import os
import struct
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image


def image_bytes(
    fmt: str, size: tuple[int, int], *, mode: str = "RGB", noise: bool = False
) -> bytes:
    """Encode one still image; noise makes it incompressible (for truncation tests)."""
    if noise:
        image = Image.frombytes(mode, size, os.urandom(size[0] * size[1] * len(mode)))
    else:
        image = Image.new(mode, size, (200, 80, 40) if mode == "RGB" else 128)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def animated_bytes(fmt: str, size: tuple[int, int], frames: int = 3) -> bytes:
    """Encode an animation (APNG when fmt is PNG, animated WebP when WEBP)."""
    images = [Image.new("RGB", size, (40 * i, 100, 200 - 40 * i)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format=fmt, save_all=True, append_images=images[1:], duration=100)
    return out.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels: nothing that size is ever allocated."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def grey_level(index: int) -> int:
    """The luma of frame `index` of a flat test video: steps of 8 within video range."""
    return 16 + (8 * index) % 216


def write_video(
    path: Path,
    *,
    fmt: str = "mp4",
    codec: str = "libx264",
    size: tuple[int, int] = (160, 96),
    fps: int = 12,
    frames: int = 12,
    audio: bool = False,
    video: bool = True,
    noise: bool = False,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode a small test video; frame i is a flat grey of luma grey_level(i) unless noise."""
    width, height = size
    with av.open(str(path), "w", format=fmt, container_options=container_options) as out:
        stream = None
        if video:
            stream = out.add_stream(codec, rate=fps, options=options or {"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if bit_rate:
                stream.bit_rate = bit_rate
        sound = out.add_stream("aac", rate=48_000) if audio else None
        if stream is not None:
            for i in range(frames):
                frame = av.VideoFrame(width, height, "yuv420p")
                for index, plane in enumerate(frame.planes):
                    level = grey_level(i) if index == 0 else 128
                    body = (
                        os.urandom(plane.buffer_size)
                        if noise
                        else bytes([level]) * plane.buffer_size
                    )
                    plane.update(body)
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        if sound is not None:
            samples = int(frames / fps * 48_000)
            done = 0
            while done < samples:
                count = min(1024, samples - done)
                chunk = av.AudioFrame(format="fltp", layout="stereo", samples=count)
                chunk.sample_rate = 48_000
                for plane in chunk.planes:
                    plane.update(bytes(plane.buffer_size))
                chunk.pts = done
                out.mux(sound.encode(chunk))
                done += count
            out.mux(sound.encode(None))
    return path


class Samples:
    """The builders above, handed to tests through the `samples` fixture."""

    image = staticmethod(image_bytes)
    animated = staticmethod(animated_bytes)
    png_bomb = staticmethod(png_bomb)
    grey_level = staticmethod(grey_level)

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def video(self, name: str, **kwargs: Any) -> Path:
        """Write a video under the test's tmp_path: samples.video("a.mp4", frames=24)."""
        return write_video(self.folder / name, **kwargs)


@pytest.fixture
def samples(tmp_path: Path) -> Samples:
    return Samples(tmp_path)


def h264_annexb(size: tuple[int, int], frames: int, fps: int = 8) -> bytes:
    """A raw H.264 stream (Annex B: its SPS, with the frame size, starts the stream)."""
    width, height = size
    out = io.BytesIO()
    with av.open(out, "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            for index, plane in enumerate(frame.planes):
                plane.update(bytes([grey_level(i) if index == 0 else 128]) * plane.buffer_size)
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def growing_mp4(small: tuple[int, int], large: tuple[int, int], frames: int = 4) -> bytes:
    """An MP4 whose header (and first SPS) declares `small`, and whose second keyframe carries
    a new SPS of `large`: two H.264 streams joined, then muxed as one track."""
    fps = 8
    joined = h264_annexb(small, frames, fps) + h264_annexb(large, frames, fps)
    out = io.BytesIO()
    with (
        av.open(io.BytesIO(joined), format="h264") as source,
        av.open(out, "w", format="mp4") as sink,
    ):
        track = source.streams.video[0]
        copy = sink.add_stream_from_template(track)
        copy.time_base = Fraction(1, fps)
        for n, packet in enumerate(p for p in source.demux(track) if p.size):
            packet.stream = copy
            packet.pts = packet.dts = n
            packet.duration = 1
            packet.time_base = Fraction(1, fps)
            sink.mux(packet)
    return out.getvalue()
