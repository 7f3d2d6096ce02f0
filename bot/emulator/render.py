"""The emulator's preview renderer: a short H.264 MP4 drawn from a job's inputs (Pillow, PyAV).

Each mode gets a picture that shows what the job asked for: text is the prompt on a title card,
animate and effect are a slow zoom on the image (the effect's name as a caption), frames are
cross-fades between the keyframes, scenes are a collage of the images, swap and add are the input
video's frames with the image and prompt laid over them. Everything here is blocking CPU work: the
server calls it through asyncio.to_thread.
"""

from __future__ import annotations

import hashlib
import io
import math
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from bot.emulator.schemas import JobInput

# Inputs bigger than this are refused before Pillow decodes them (decompression bombs).
MAX_INPUT_PIXELS = 64_000_000
# A preview never needs more than a few frames of an input video.
MAX_VIDEO_FRAMES = 24
FREE_BOX_HEADER = 8


@dataclass(frozen=True)
class PreviewSettings:
    """How big and long previews are; small by default so tests stay fast."""

    short_side: int = 240
    fps: int = 12
    seconds: float = 1.5
    crf: int = 30
    preset: str = "ultrafast"

    def __post_init__(self) -> None:
        if self.short_side < 16 or self.short_side % 2:
            raise ValueError("short_side must be an even number of pixels, at least 16")
        if self.fps < 1 or self.seconds <= 0:
            raise ValueError("fps must be at least 1 and seconds positive")

    @property
    def frame_count(self) -> int:
        return max(1, round(self.fps * self.seconds))


class InputUnreadable(Exception):
    """An input file is not an image or video the preview can use; the message names which input."""


@dataclass
class RenderInputs:
    """A job's decoded inputs: its validated body plus the pictures its URLs pointed at."""

    job: JobInput
    images: list[Image.Image] = field(default_factory=list)
    video_frames: list[Image.Image] = field(default_factory=list)


def decode_image(data: bytes, what: str) -> Image.Image:
    """Decode image bytes to RGB, refusing what Pillow cannot read or what is absurdly large."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            if width * height > MAX_INPUT_PIXELS:
                raise InputUnreadable(f"{what} is too large ({width}x{height} pixels)")
            probe.load()
            return ImageOps.exif_transpose(probe).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputUnreadable(f"{what} is not a readable image ({type(exc).__name__})") from None


def decode_video(data: bytes, what: str, limit: int = MAX_VIDEO_FRAMES) -> list[Image.Image]:
    """Decode up to `limit` frames of a video, spread over its first seconds."""
    frames: list[Image.Image] = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise InputUnreadable(f"{what} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = float(stream.average_rate or 24)
            # Keep about 2 frames per second of input so a long clip does not cost a full decode.
            step = max(1, round(rate / 2))
            for index, frame in enumerate(container.decode(stream)):
                if index % step == 0:
                    frames.append(frame.to_image().convert("RGB"))  # type: ignore[no-untyped-call]
                if len(frames) >= limit:
                    break
    except av.FFmpegError as exc:
        raise InputUnreadable(f"{what} is not a readable video ({type(exc).__name__})") from None
    if not frames:
        raise InputUnreadable(f"{what} has no frames")
    return frames


def output_size_for(inputs: RenderInputs, settings: PreviewSettings) -> tuple[int, int]:
    """The preview's (width, height): the requested aspect ratio, or the image's/video's."""
    job = inputs.job
    ratio: float
    if job.mode in ("text", "scenes"):
        w, h = (int(part) for part in (job.aspect_ratio or "16:9").split(":"))
        ratio = w / h
    elif job.mode in ("swap", "add") and inputs.video_frames:
        ratio = inputs.video_frames[0].width / inputs.video_frames[0].height
    elif inputs.images:
        ratio = inputs.images[0].width / inputs.images[0].height
    else:
        ratio = 16 / 9
    ratio = min(max(ratio, 1 / 4), 4.0)
    short = settings.short_side
    if ratio >= 1:
        return _even(short * ratio), short
    return short, _even(short / ratio)


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def render_preview(
    inputs: RenderInputs,
    settings: PreviewSettings,
    out_path: Path,
    *,
    output_size: int | None = None,
) -> int:
    """Render the preview MP4 to out_path (padded to about output_size bytes); return its size."""
    size = output_size_for(inputs, settings)
    frames = _frames(inputs, settings, size)
    _encode(frames, size, settings, out_path)
    written = out_path.stat().st_size
    if output_size is not None and output_size - written >= FREE_BOX_HEADER:
        written += _pad_with_free_box(out_path, output_size - written)
    return written


def _encode(
    frames: Iterator[Image.Image],
    size: tuple[int, int],
    settings: PreviewSettings,
    out_path: Path,
) -> None:
    # +faststart moves the index to the front so players (and Discord) can stream it.
    with av.open(str(out_path), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream: Any = out.add_stream("libx264", rate=settings.fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": settings.preset, "crf": str(settings.crf)}
        for image in frames:
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _pad_with_free_box(path: Path, extra: int) -> int:
    # A trailing ISO-BMFF `free` box is ignored by every player, so the file stays valid.
    extra = min(extra, 2**32 - 1)
    with path.open("ab") as handle:
        handle.write(extra.to_bytes(4, "big") + b"free")
        remaining = extra - FREE_BOX_HEADER
        chunk = bytes(min(remaining, 1 << 20))
        while remaining > 0:
            handle.write(chunk[:remaining])
            remaining -= len(chunk)
    return extra


# --- drawing ---------------------------------------------------------------------------------


def _frames(
    inputs: RenderInputs, settings: PreviewSettings, size: tuple[int, int]
) -> Iterator[Image.Image]:
    job = inputs.job
    count = settings.frame_count
    times = [i / max(1, count - 1) for i in range(count)]
    if job.mode == "text" or not (inputs.images or inputs.video_frames):
        return (_title_card(job, size, t) for t in times)
    if job.mode in ("image", "effect"):
        still = _cover(inputs.images[0], size, zoom=1.2)
        caption = job.pikaffect if job.mode == "effect" else job.prompt
        return (_captioned(_zoom(still, size, t), caption, big=job.mode == "effect") for t in times)
    if job.mode == "frames":
        keys = [_cover(image, size) for image in inputs.images]
        weights = [t.duration for t in job.transitions] or [1] * (len(keys) - 1)
        return (_captioned(_crossfade(keys, weights, t), job.prompt) for t in times)
    if job.mode == "scenes":
        collage = _collage(inputs.images, size)
        return (_captioned(_zoom(collage, size, t), job.prompt) for t in times)
    return _video_overlay(inputs, size, times)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _colours(seed_text: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    digest = hashlib.sha256(seed_text.encode()).digest()
    first = (40 + digest[0] % 120, 40 + digest[1] % 120, 60 + digest[2] % 140)
    second = (digest[3] % 80, digest[4] % 80, digest[5] % 100)
    return first, second


def _title_card(job: JobInput, size: tuple[int, int], t: float) -> Image.Image:
    width, height = size
    top, bottom = _colours(f"{job.prompt}|{job.seed}")
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        mix = y / max(1, height - 1)
        draw.line(
            [(0, y), (width, y)],
            fill=tuple(round(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True)),
        )
    # A light band sweeping across shows the clip is moving, not a still.
    band_x = round(-width * 0.3 + t * width * 1.6)
    draw.rectangle([band_x, 0, band_x + width // 10, height], fill=_lighten(top))
    font_size = max(10, height // 12)
    font = _font(font_size)
    chars = max(8, int(width / (font_size * 0.55)))
    lines = textwrap.wrap(job.prompt or "", width=chars)[: max(1, (height * 2 // 3) // font_size)]
    y = (height - len(lines) * (font_size + 4)) // 2
    for line in lines:
        length = draw.textlength(line, font=font)
        draw.text(((width - length) / 2, y), line, font=font, fill=(255, 255, 255))
        y += font_size + 4
    footer = " · ".join(
        part
        for part in (
            job.endpoint_id.removeprefix("fal-ai/pika/").removesuffix("/text-to-video"),
            job.resolution,
            f"{job.duration} s" if job.duration else None,
            "preview",
        )
        if part
    )
    draw.text((6, height - font_size - 4), footer, font=_font(max(8, font_size * 2 // 3)))
    return image


def _lighten(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = colour
    return (min(255, r + 60), min(255, g + 60), min(255, b + 60))


def _cover(image: Image.Image, size: tuple[int, int], zoom: float = 1.0) -> Image.Image:
    """Scale and centre-crop the image to fill size (times zoom, leaving room to zoom in)."""
    target = (math.ceil(size[0] * zoom), math.ceil(size[1] * zoom))
    return ImageOps.fit(image, target, method=Image.Resampling.BILINEAR)


def _zoom(still: Image.Image, size: tuple[int, int], t: float) -> Image.Image:
    """A crop that shrinks towards the centre as t goes 0 -> 1: a slow push-in."""
    width, height = size
    scale = 1.0 + 0.15 * t
    crop_w, crop_h = still.width / scale, still.height / scale
    left, top = (still.width - crop_w) / 2, (still.height - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    return still.resize((width, height), Image.Resampling.BILINEAR, box=box)


def _crossfade(keys: Sequence[Image.Image], weights: Sequence[int], t: float) -> Image.Image:
    total = float(sum(weights))
    position = t * total
    for index, weight in enumerate(weights):
        if position <= weight or index == len(weights) - 1:
            local = min(1.0, max(0.0, position / weight)) if weight else 1.0
            eased = local * local * (3 - 2 * local)
            return Image.blend(keys[index], keys[index + 1], eased)
        position -= weight
    return keys[-1]


def _collage(images: Sequence[Image.Image], size: tuple[int, int]) -> Image.Image:
    width, height = (math.ceil(side * 1.2) for side in size)
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    canvas = Image.new("RGB", (width, height), (16, 16, 20))
    cell_w, cell_h = width // cols, height // rows
    for index, image in enumerate(images):
        row, col = divmod(index, cols)
        tile = ImageOps.fit(image, (cell_w - 4, cell_h - 4), method=Image.Resampling.BILINEAR)
        canvas.paste(tile, (col * cell_w + 2, row * cell_h + 2))
    return canvas


def _captioned(image: Image.Image, caption: str | None, *, big: bool = False) -> Image.Image:
    if not caption:
        return image
    width, height = image.size
    font_size = max(9, height // (8 if big else 14))
    font = _font(font_size)
    text = textwrap.shorten(caption, width=max(8, int(width / (font_size * 0.55))), placeholder="…")
    draw = ImageDraw.Draw(image, "RGBA")
    draw.rectangle([0, height - font_size - 10, width, height], fill=(0, 0, 0, 140))
    draw.text((6, height - font_size - 6), text, font=font, fill=(255, 255, 255))
    return image


def _video_overlay(
    inputs: RenderInputs, size: tuple[int, int], times: Sequence[float]
) -> Iterator[Image.Image]:
    job = inputs.job
    sources = inputs.video_frames or [Image.new("RGB", size, (30, 30, 30))]
    covered = [_cover(frame, size) for frame in sources]
    thumb = None
    if inputs.images:
        side = max(8, min(size) // 3)
        thumb = ImageOps.fit(inputs.images[0], (side, side), method=Image.Resampling.BILINEAR)
    if job.mode == "swap":
        caption = f"swap {job.modify_region or 'subject'} -> {job.prompt or 'image'}"
    else:
        caption = f"add: {job.prompt or 'image'}"
    for index, t in enumerate(times):
        frame = covered[index % len(covered)].copy()
        if thumb is not None:
            # The added/swapped-in picture drifts across the frame so the overlay reads as motion.
            x = round((size[0] - thumb.width) * t)
            frame.paste(thumb, (x, 4))
        yield _captioned(frame, caption)
