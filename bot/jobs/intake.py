"""Members' files on their way in: checked by their bytes, then kept in the input cache."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bot.media import (
    DownloadError,
    DownloadTooLarge,
    InputCache,
    InputRejected,
    Limits,
    fetch,
    fitted_path,
    precheck_image,
    precheck_video,
    validate_image,
    validate_video,
)
from bot.media.limits import format_bytes
from bot.pika import InputRef, InvalidRequest
from bot.store import Job

VIDEO_OPTIONS = frozenset({"video"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def cdn_rules(hosts: Collection[str], discord_api_url: str) -> tuple[frozenset[str], bool]:
    """The hosts members' attachments may come from, and whether HTTPS is required.

    A Discord API on this machine (the fake Discord in tests and the sandbox) serves its CDN
    from the same origin: that host is added, and only then is plain HTTP accepted.
    """
    api_host = urlsplit(discord_api_url).hostname or ""
    if api_host in LOOPBACK:
        return frozenset({*hosts, api_host}), False
    return frozenset(hosts), True


class Intake:
    """Commands between their first checks and their job: each counts as one of its member's
    unfinished jobs, and at most `concurrency` of them download and check files at once, so
    what intake holds in memory is bounded however many commands arrive together."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        concurrency: int,
        cdn_hosts: Collection[str],
        require_https: bool = True,
    ) -> None:
        self._http = http
        self._slots = asyncio.Semaphore(concurrency)
        self._members: Counter[int] = Counter()
        self.cdn_hosts = frozenset(cdn_hosts)
        self.require_https = require_https

    def pending(self, user_id: int) -> int:
        """How many of the member's commands are in intake now."""
        return self._members[user_id]

    @contextmanager
    def holding(self, user_id: int) -> Iterator[int]:
        """Count one command of the member until it becomes a job or is refused; yields how many
        of theirs were in intake already (counted before any await, so a burst sees itself)."""
        already = self._members[user_id]
        self._members[user_id] += 1
        try:
            yield already
        finally:
            self._members[user_id] -= 1
            if self._members[user_id] <= 0:
                del self._members[user_id]

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of the `concurrency` places where files are downloaded and checked."""
        async with self._slots:
            yield

    async def read(self, option: str, url: str, limits: Limits) -> bytes:
        """An attachment's bytes from Discord's CDN: only from its hosts, never more than the
        option's size limit (counted while streaming). Raises InvalidRequest saying why not."""
        max_bytes = limits.video_max_bytes if option in VIDEO_OPTIONS else limits.image_max_bytes
        try:
            return await fetch(
                self._http,
                url,
                max_bytes=max_bytes,
                allowed_hosts=self.cdn_hosts,
                require_https=self.require_https,
            )
        except DownloadTooLarge as error:
            noun = "videos" if option in VIDEO_OPTIONS else "images"
            most = format_bytes(error.max_bytes)
            raise InputRejected(
                f"{option} is more than {most}; {noun} may be at most {most}."
            ) from None
        except DownloadError as error:
            raise InvalidRequest(
                f"Discord did not hand over the file in `{option}`: {error.message} Nothing was "
                "charged; try again in a moment."
            ) from None


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
    sha = cache.put(upload.data)
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
    "Intake",
    "Upload",
    "cdn_rules",
    "kept_video",
    "precheck_attachment",
    "take_inputs",
]
