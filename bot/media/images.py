"""Validate a member's image by its bytes: type, size, pixel bounds from the header, integrity
without a full-resolution decode."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from bot.media.limits import (
    DEFAULT_LIMITS,
    InputRejected,
    Limits,
    check_image_dimensions,
    describe_kind,
    format_bytes,
    format_kinds,
)
from bot.media.sniff import CONTENT_TYPES, DISPLAY_NAMES, sniff

# Pillow's names for the kinds we sniff, so Image.open tries only the decoder the bytes claim.
_PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) are not SOFs.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# WebP has no reduced decode in Pillow: pictures up to this size are decoded (at most 16 MB of
# RGBA), larger ones are checked by their RIFF structure only, so intake memory stays bounded.
_WEBP_DECODE_MAX_PIXELS = 4_000_000


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What an accepted image is."""

    content_type: str
    width: int
    height: int
    format: str


def validate_image(field: str, data: bytes, limits: Limits = DEFAULT_LIMITS) -> ImageInfo:
    """Accept `data` as the member's `field` image or raise InputRejected saying why not.

    Blocking (it reads the whole file): run it in a thread. The size is checked from the file
    header before Pillow opens it, and no image is decoded at full resolution: a PNG's chunks
    are read and their checksums verified, a JPEG is decoded at 1/8 scale, a WebP is decoded
    only when small and otherwise checked by its structure. So peak memory is a small multiple
    of the file, not of its pixels.
    """
    allowed = format_kinds(limits.image_formats)
    kind = sniff(data)
    if kind == "empty":
        raise InputRejected(f"{field} is an empty file; images must be {allowed}.")
    if len(data) > limits.image_max_bytes:
        raise InputRejected(
            f"{field} is {format_bytes(len(data))}; images may be at most "
            f"{format_bytes(limits.image_max_bytes)}."
        )
    if kind not in limits.image_formats or kind not in _PILLOW_FORMATS:
        raise InputRejected(
            f"{field} is {describe_kind(kind, expected='image')}; images must be {allowed}."
        )

    # Our own header parse is the per-call bomb guard: it needs no Pillow and no global setting.
    declared = header_size(kind, data)
    if declared is not None:
        check_image_dimensions(field, *declared, limits)

    unreadable = InputRejected(
        f"{field} is a damaged or incomplete {DISPLAY_NAMES[kind]} file; "
        f"please upload it again or export it as {allowed}."
    )
    try:
        # Opening reads the header only; Pillow's own global bomb check may fire here first.
        image = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[kind]])
    except Image.DecompressionBombError:
        raise InputRejected(
            f"{field} has too many pixels; images may have at most "
            f"{limits.image_max_pixels / 1e6:g} megapixels."
        ) from None
    except Exception:
        # Pillow raises many types (OSError, SyntaxError, struct.error...) on hostile headers.
        raise unreadable from None

    with image:
        width, height = image.size
        check_image_dimensions(field, width, height, limits)
        if getattr(image, "n_frames", 1) > 1:
            raise InputRejected(
                f"{field} is an animated {DISPLAY_NAMES[kind]}; "
                f"images must be still pictures ({allowed})."
            )
        try:
            if kind == "png":
                # Reads every chunk and checks its CRC (so damage and truncation show); the pixels
                # are never inflated.
                image.verify()
            elif kind == "webp" and width * height > _WEBP_DECODE_MAX_PIXELS:
                if not _webp_whole(data):
                    raise unreadable
            else:
                if kind == "jpeg":
                    # Decoding at 1/8 scale still reads every byte (so truncation shows) in 1/64
                    # of the memory.
                    image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
                image.load()
        except Exception:
            raise unreadable from None

    return ImageInfo(content_type=CONTENT_TYPES[kind], width=width, height=height, format=kind)


def header_size(kind: str, data: bytes) -> tuple[int, int] | None:
    """Read (width, height) from a PNG, JPEG or WebP header without decoding; None if unsure."""
    if kind == "png":
        if data[12:16] != b"IHDR" or len(data) < 24:
            return None
        return _positive(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
    if kind == "jpeg":
        return _jpeg_size(data)
    if kind == "webp":
        return _webp_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    # Segments are walked, not searched, so bytes inside thumbnails or metadata cannot fool us.
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:
            at += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        if marker in (0xD9, 0xDA):
            return None
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in _JPEG_SOF:
            if at + 9 > len(data):
                return None
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return _positive(width, height)
        if length < 2:
            return None
        at += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return _positive(width, height)
    return None


def _webp_whole(data: bytes) -> bool:
    """Whether a WebP's RIFF chunks are all there: the file is as long as its header says and
    its chunks end exactly at the end, one of them a picture."""
    end = 8 + int.from_bytes(data[4:8], "little")
    if len(data) < end or end < 20:
        return False
    at, picture = 12, False
    while at + 8 <= end:
        size = int.from_bytes(data[at + 4 : at + 8], "little")
        picture = picture or data[at : at + 4] in (b"VP8 ", b"VP8L")
        at += 8 + size + (size & 1)
    return at == end and picture


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None
