"""Members' files on their way in: checked by their bytes, then kept in the input cache."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from bot.media import (
    InputCache,
    InputRejected,
    Limits,
    fitted_path,
    precheck_image,
    precheck_video,
    validate_image,
    validate_video,
)
from bot.pika import InputRef
from bot.store import Job

VIDEO_OPTIONS = frozenset({"video"})


@dataclass(frozen=True, slots=True)
class Upload:
    """One attached file, as the member sent it, under its option name (image, image2, video)."""

    option: str
    data: bytes


def precheck_attachment(
    option: str,
    *,
    content_type: str | None,
    size: int,
    width: int | None,
    height: int | None,
    limits: Limits,
) -> None:
    """Refuse a file from what Discord says of it (type, size, dimensions), before any download."""
    if option in VIDEO_OPTIONS:
        precheck_video(
            option,
            content_type=content_type or "",
            size=size,
            width=width,
            height=height,
            limits=limits,
        )
    else:
        precheck_image(
            option,
            content_type=content_type or "",
            size=size,
            width=width,
            height=height,
            limits=limits,
        )


def _check_and_keep(upload: Upload, cache: InputCache, limits: Limits) -> InputRef:
    if upload.option in VIDEO_OPTIONS:
        content_type = validate_video(upload.option, upload.data, limits).content_type
    else:
        content_type = validate_image(upload.option, upload.data, limits).content_type
    sha = cache.put(upload.data, content_type)
    return InputRef(sha256=sha, content_type=content_type)


async def take_inputs(
    uploads: list[Upload], cache: InputCache, limits: Limits
) -> dict[str, InputRef]:
    """Validate every file by its bytes (off the event loop) and cache it; option -> InputRef.

    Raises InputRejected for the first file that fails, naming its option.
    """
    refs: dict[str, InputRef] = {}
    for upload in uploads:
        refs[upload.option] = await asyncio.to_thread(_check_and_keep, upload, cache, limits)
    return refs


async def kept_video(job: Job, limit: int) -> Path | None:
    """The job's video on disk if the bot still keeps it and it fits in one message."""
    if job.output_path is None:
        return None
    candidates = [fitted_path(Path(job.output_path)), Path(job.output_path)]

    def smallest_fitting() -> Path | None:
        for path in candidates:
            if path.is_file() and path.stat().st_size <= limit:
                return path
        return None

    return await asyncio.to_thread(smallest_fitting)


__all__ = [
    "InputRejected",
    "Upload",
    "kept_video",
    "precheck_attachment",
    "take_inputs",
]
