"""Bad files for the corpus, made by code (Pillow, PyAV, bytes) rather than kept as blobs."""

from __future__ import annotations

import functools
import io
import struct
import zlib

from PIL import Image

from tests.e2e.conftest import mp4, png
from tests.media.conftest import growing_mp4

MiB = 1024 * 1024


def _saved(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


@functools.cache
def jpeg(width: int = 512, height: int = 512) -> bytes:
    """A real baseline JPEG."""
    return _saved(Image.new("RGB", (width, height), "teal"), "JPEG")


def scrambled(data: bytes, start: int, length: int = 2000) -> bytes:
    """The same file with `length` bytes from `start` on flipped: the header survives, the
    pixels (or frames) do not."""
    damaged = bytearray(data)
    for n in range(start, min(len(damaged), start + length)):
        damaged[n] ^= 0x5A
    return bytes(damaged)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first part of a file, as an upload cut short leaves it."""
    return data[: max(1, int(len(data) * keep))]


def _frames(size: tuple[int, int]) -> list[Image.Image]:
    return [Image.new("RGB", size, colour) for colour in ("red", "green", "blue")]


@functools.cache
def animated_gif() -> bytes:
    """A three-frame looping GIF big enough to pass every size rule."""
    first, *rest = _frames((320, 320))
    return _saved(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0)


@functools.cache
def animated_webp() -> bytes:
    """A three-frame WebP: an allowed format, but not a still picture."""
    first, *rest = _frames((320, 320))
    return _saved(first, "WEBP", save_all=True, append_images=rest, duration=100, loop=0)


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="512" height="512">'
    b'<script>alert(1)</script><rect width="512" height="512"/></svg>'
)
TEXT = b"these are not the pixels you are looking for\n" * 20
HTML = b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"
ZIP = b"PK\x03\x04" + bytes(200)
PDF = b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 10


@functools.cache
def pixel_bomb() -> bytes:
    """A tiny PNG whose header claims 60,000 × 60,000 pixels (3.6 gigapixels)."""
    real = png(8, 8)
    header = struct.pack(">II", 60_000, 60_000) + real[24:29]
    chunk = b"IHDR" + header
    crc = struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return real[:8] + struct.pack(">I", len(header)) + chunk + crc + real[33:]


@functools.cache
def thirty_mb_image() -> bytes:
    """A real PNG followed by padding to 30 MB, as a camera's huge export arrives."""
    real = png()
    return real + bytes(30_000_000 - len(real))


@functools.cache
def clip() -> bytes:
    """A small real MP4 (the healthy input of video commands)."""
    return mp4(1.0)


@functools.cache
def two_minute_video() -> bytes:
    """A real 2-minute H.264 MP4, kept small by being 64 px and 1 frame per second."""
    return mp4(120, 64, 64, 1)


@functools.cache
def growing_video() -> bytes:
    """An MP4 whose header says 64×64 and whose second keyframe's SPS makes it 4160×64."""
    return growing_mp4((64, 64), (4160, 64))


def mp4_header_only() -> bytes:
    """The `ftyp` box of a real MP4 and nothing else."""
    return clip()[:32]


__all__ = [
    "HTML",
    "PDF",
    "SVG",
    "TEXT",
    "ZIP",
    "MiB",
    "animated_gif",
    "animated_webp",
    "clip",
    "growing_video",
    "jpeg",
    "mp4",
    "mp4_header_only",
    "pixel_bomb",
    "png",
    "scrambled",
    "thirty_mb_image",
    "truncated",
    "two_minute_video",
]
