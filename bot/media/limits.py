"""What members may upload, and the cheap checks made from Discord's attachment metadata alone."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.media.sniff import DISPLAY_NAMES, IMAGE_KINDS, VIDEO_KINDS

MIB = 1024 * 1024


class InputRejected(Exception):
    """A member's attachment is refused; `.message` says what was wrong and what is allowed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on member inputs.

    Image numbers: PRODUCT.md fixes the formats, 20 MiB and the 256 px minimum. The upper
    bounds are ours: 8192 px per side and 50 megapixels admit every phone and camera photo
    (a 48 MP phone shot is 8000×6000) while keeping one decoded image to at most ~200 MB of
    RGBA; Pika renders 1080p at most, so nothing is lost by refusing larger ones. They stop
    decompression bombs, which compress billions of pixels into a few kilobytes.

    Video numbers: PRODUCT.md fixes the formats, 50 MiB and 30 s. 4096 px per side admits
    4K (DCI and UHD, either orientation); 9000 frames is 30 s at 300 fps, above any phone's
    slow motion, and bounds the demuxing work a hostile file can ask of us.
    """

    image_formats: tuple[str, ...] = ("png", "jpeg", "webp")
    image_max_bytes: int = 20 * MIB
    image_min_side: int = 256
    image_max_side: int = 8192
    image_max_pixels: int = 50_000_000
    video_formats: tuple[str, ...] = ("mp4", "mov", "webm")
    video_max_bytes: int = 50 * MIB
    video_max_seconds: float = 30.0
    video_max_side: int = 4096
    video_max_frames: int = 9000


DEFAULT_LIMITS = Limits()

# The content types Discord declares for each kind we accept (it guesses them from the name).
_DECLARED_TYPES: dict[str, tuple[str, ...]] = {
    "png": ("image/png", "image/apng"),
    "jpeg": ("image/jpeg", "image/jpg", "image/pjpeg"),
    "webp": ("image/webp",),
    "mp4": ("video/mp4", "application/mp4", "video/x-m4v"),
    "mov": ("video/quicktime",),
    "webm": ("video/webm",),
}


def format_bytes(size: int) -> str:
    """Say a file size the way Discord's client does: "512 KiB", "20 MiB", "23.4 MiB"."""
    if size < 1024:
        return f"{size} bytes"
    if size < MIB:
        return f"{_trim(size / 1024)} KiB"
    return f"{_trim(size / MIB)} MiB"


def format_seconds(seconds: float) -> str:
    """Say a duration: "4.5 s", "31 s", "2 min 0 s" (rounded up so it never looks in bounds)."""
    tenths = math.ceil(seconds * 10 - 1e-9) / 10
    if tenths < 60:
        return f"{_trim(tenths)} s"
    whole = math.ceil(seconds - 1e-9)
    return f"{whole // 60} min {whole % 60} s"


def format_kinds(kinds: tuple[str, ...]) -> str:
    """Join kinds for a sentence: "PNG, JPEG or WebP"."""
    names = [DISPLAY_NAMES.get(kind, kind.upper()) for kind in kinds]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def describe_kind(kind: str | None, *, expected: str) -> str:
    """Name what a file turned out to be, as the end of "image1 is ...": "a GIF", "an MP4 video"."""
    if kind is None:
        return f"not a file we can read as {'an' if expected == 'image' else 'a'} {expected}"
    if kind == "empty":
        return "an empty file"
    if kind == "text":
        return f"a text file, not {'an' if expected == 'image' else 'a'} {expected}"
    name = DISPLAY_NAMES.get(kind, kind.upper())
    if kind == "svg":
        name = "an SVG drawing"
    elif kind == "xml":
        name = "an XML document"
    else:
        # Pick the article by how the name is spoken: "an MP4", "an MKV", "a GIF", "a PNG".
        article = "an" if name[0] in "AEFHILMNORSX" else "a"
        if kind in VIDEO_KINDS and expected != "video":
            name = f"{article} {name} video"
        elif kind in IMAGE_KINDS and expected != "image":
            name = f"{article} {name} image"
        else:
            name = f"{article} {name}"
    return name


def precheck_image(
    field: str,
    *,
    content_type: str | None,
    size: int,
    width: int | None,
    height: int | None,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Refuse an image attachment from its declared metadata, before downloading it.

    Discord's declared type, size and dimensions may lie; validate_image checks the bytes later.
    """
    allowed = format_kinds(limits.image_formats)
    if content_type is not None:
        declared = _declared_kind(content_type, limits.image_formats)
        if declared is None:
            raise InputRejected(
                f"{field} was sent as {_describe_declared(content_type, expected='image')}; "
                f"images must be {allowed}."
            )
    _check_size(field, size, limits.image_max_bytes, noun="images", allowed=allowed)
    if width is not None and height is not None:
        check_image_dimensions(field, width, height, limits)


def precheck_video(
    field: str,
    *,
    content_type: str | None,
    size: int,
    width: int | None = None,
    height: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Refuse a video attachment from its declared metadata, before downloading it."""
    allowed = format_kinds(limits.video_formats)
    if content_type is not None:
        declared = _declared_kind(content_type, limits.video_formats)
        if declared is None:
            raise InputRejected(
                f"{field} was sent as {_describe_declared(content_type, expected='video')}; "
                f"videos must be {allowed}."
            )
    _check_size(field, size, limits.video_max_bytes, noun="videos", allowed=allowed)
    if width is not None and height is not None:
        check_video_dimensions(field, width, height, limits)


def check_image_dimensions(field: str, width: int, height: int, limits: Limits) -> None:
    """Refuse an image whose pixel size is out of bounds (too large first: that is the bomb)."""
    if max(width, height) > limits.image_max_side:
        raise InputRejected(
            f"{field} is {width}×{height} px; each side may be at most {limits.image_max_side} px."
        )
    if width * height > limits.image_max_pixels:
        raise InputRejected(
            f"{field} is {width}×{height} px ({_trim(width * height / 1e6)} megapixels); "
            f"images may have at most {_trim(limits.image_max_pixels / 1e6)} megapixels."
        )
    if min(width, height) < limits.image_min_side:
        raise InputRejected(
            f"{field} is {width}×{height} px; each side must be at least "
            f"{limits.image_min_side} px."
        )


def check_video_dimensions(field: str, width: int, height: int, limits: Limits) -> None:
    """Refuse a video whose frame size is out of bounds."""
    if max(width, height) > limits.video_max_side:
        raise InputRejected(
            f"{field} is {width}×{height} px; each side may be at most {limits.video_max_side} px."
        )


def _check_size(field: str, size: int, max_bytes: int, *, noun: str, allowed: str) -> None:
    if size <= 0:
        raise InputRejected(f"{field} is an empty file; {noun} must be {allowed}.")
    if size > max_bytes:
        raise InputRejected(
            f"{field} is {format_bytes(size)}; {noun} may be at most {format_bytes(max_bytes)}."
        )


def _declared_kind(content_type: str, kinds: tuple[str, ...]) -> str | None:
    mime = content_type.split(";", 1)[0].strip().lower()
    for kind in kinds:
        if mime in _DECLARED_TYPES.get(kind, ()):
            return kind
    return None


def _describe_declared(content_type: str, *, expected: str) -> str:
    mime = content_type.split(";", 1)[0].strip().lower()
    kind = _KNOWN_DECLARED.get(mime)
    if kind is not None:
        return describe_kind(kind, expected=expected)
    # Echo the declared type itself, cut short and stripped of anything that could format.
    shown = "".join(ch for ch in mime[:40] if ch.isalnum() or ch in "/.+-") or "unknown"
    return f"a file of type {shown}"


_KNOWN_DECLARED: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/svg+xml": "svg",
    "image/heic": "heic",
    "image/heif": "heic",
    "image/avif": "avif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
    "video/x-msvideo": "avi",
    "text/plain": "text",
    "application/pdf": "pdf",
    "application/zip": "zip",
}


def _trim(value: float) -> str:
    """Show one decimal only when it says something: 20.0 -> "20", 23.44 -> "23.4"."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
