"""A submitted job's life in the emulator: queued, given a slot, run, rendered, completed."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import aiohttp

from bot.emulator.jobs import InputFetchFailed, Job, StoredFile
from bot.emulator.render import (
    InputUnreadable,
    RenderInputs,
    decode_image,
    decode_video,
    render_preview,
)
from bot.emulator.schemas import JobInput

if TYPE_CHECKING:
    from bot.emulator.server import FalEmulator

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class JobLife:
    """Runs each job as its script says, and keeps the account's concurrency limit."""

    def __init__(self, emulator: FalEmulator) -> None:
        self._em = emulator
        # Like a fal account's limit on IN_PROGRESS requests: the rest wait IN_QUEUE, in order.
        self._running = 0
        self._waiting: deque[Job] = deque()

    async def _pause(self, job: Job, seconds: float | None) -> bool:
        """Wait up to `seconds` (forever if None); True if advance() or a cancel cut it short."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            if job.release_stage == job.stage or (job.cancelled and job.stage == "IN_QUEUE"):
                job.release_stage = None
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            job.wake.clear()
            try:
                await asyncio.wait_for(job.wake.wait(), remaining)
            except TimeoutError:
                return False

    async def _wait_for_slot(self, job: Job, *, force: bool) -> None:
        """Stay IN_QUEUE until the account's concurrency allows one more IN_PROGRESS request.

        advance() lets a request through at once, even over the limit, so holds stay scriptable.
        """
        if self._em.concurrency is None:
            return
        if force or (self._running < self._em.concurrency and not self._waiting):
            self._running += 1
            job.holds_slot = True
            return
        self._waiting.append(job)
        self._renumber()
        while not job.holds_slot:
            if job.cancelled or job.release_stage == "IN_QUEUE":
                self._waiting.remove(job)
                self._renumber()
                if not job.cancelled:
                    job.release_stage = None
                    self._running += 1
                    job.holds_slot = True
                return
            job.wake.clear()
            await job.wake.wait()

    def _release_slot(self, job: Job) -> None:
        if not job.holds_slot:
            return
        job.holds_slot = False
        self._running -= 1
        while (
            self._waiting
            and self._em.concurrency is not None
            and self._running < self._em.concurrency
        ):
            waiter = self._waiting.popleft()
            waiter.holds_slot = True
            self._running += 1
            waiter.wake.set()
        self._renumber()

    def _renumber(self) -> None:
        for position, waiter in enumerate(self._waiting):
            if waiter.queue_position != position:
                waiter.queue_position = position
                waiter.touch()

    async def run(self, job: Job) -> None:
        script = job.script
        work: asyncio.Task[None] | None = None
        try:
            released = False
            steps = script.queue_position + 1
            for position in range(script.queue_position, -1, -1):
                if job.queue_position != position:
                    job.queue_position = position
                    job.touch()
                released = await self._pause(job, script.queue_seconds / steps)
                if released:
                    break
            if script.hold_in_queue and not released:
                released = await self._pause(job, None)
            if not job.cancelled:
                await self._wait_for_slot(job, force=released)
            if job.cancelled:
                self._finish_cancelled(job)
                return

            job.queue_position = 0
            job.started_at = time.monotonic()
            job.set_stage("IN_PROGRESS")
            job.log(f"Pika preview model started for {job.endpoint_id}")
            if script.outcome == "ok":
                work = asyncio.create_task(self._produce(job))
            released = await self._pause(job, script.run_seconds)
            if script.hold_in_progress and not released:
                await self._pause(job, None)
            if work is not None:
                await work
            self._finish(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("fal emulator: job %s crashed", job.request_id)
            job.error, job.error_type = "Internal error in the emulator", "internal_error"
            job.result_status = 500
            job.result_body = {"detail": job.error, "error_type": job.error_type}
            job.result_headers = {"X-Fal-Error-Type": job.error_type}
            self._complete(job)
        finally:
            if work is not None and not work.done():
                work.cancel()
            self._release_slot(job)

    def _finish_cancelled(self, job: Job) -> None:
        job.error, job.error_type = "Request was cancelled", "request_cancelled"
        job.result_status = 400
        job.result_body = {"detail": job.error, "error_type": job.error_type}
        job.result_headers = {"X-Fal-Error-Type": job.error_type}
        self._complete(job)

    def _finish(self, job: Job) -> None:
        script = job.script
        if script.outcome == "model_error":
            message = script.error_message or (
                "The content could not be processed because it was flagged by a content checker."
            )
            self._fail_model(
                job,
                list(script.error_loc),
                message,
                script.error_type or "content_policy_violation",
            )
            if script.result_status is not None:
                job.result_status = script.result_status
        elif script.outcome == "platform_error":
            job.error = script.error_message or "No runner could be allocated for the request."
            job.error_type = script.error_type or "runner_scheduling_failure"
            job.result_status = script.result_status or 503
            job.result_body = {"detail": job.error, "error_type": job.error_type}
            job.result_headers = {"X-Fal-Error-Type": job.error_type}
            job.log(job.error, "ERROR")
        self._complete(job)

    def _fail_model(self, job: Job, loc: list[Any], message: str, kind: str) -> None:
        job.error, job.error_type = message, kind
        job.result_status = 422
        job.result_body = {"detail": [{"loc": loc, "msg": message, "type": kind}]}
        job.result_headers = {"X-Fal-Retryable": "false"}
        job.log(message, "ERROR")

    def _complete(self, job: Job) -> None:
        job.completed_at = time.monotonic()
        job.set_stage("COMPLETED")
        self._em._webhooks.start(job)

    async def _produce(self, job: Job) -> None:
        """Fetch and decode the inputs, render the preview, and set the job's result."""
        job_input = job.job_input
        inputs = RenderInputs(job=job_input)
        try:
            if job_input.video_url is not None:
                job.log("Downloading the input video")
                data = await self._load(job, job_input.video_url, "video_url")
                inputs.video_frames = await asyncio.to_thread(decode_video, data, "video_url")
            for index, url in enumerate(job_input.image_urls):
                what = _image_field(job_input, index)
                job.log(f"Downloading {what}")
                data = await self._load(job, url, what)
                inputs.images.append(await asyncio.to_thread(decode_image, data, what))
        except (InputFetchFailed, InputUnreadable) as exc:
            what = str(exc).split(" ", 1)[0]
            kind = (
                "file_download_error" if isinstance(exc, InputFetchFailed) else "image_load_error"
            )
            if isinstance(exc, InputUnreadable) and what == "video_url":
                kind = "video_load_error"
            self._fail_model(job, ["body", *_loc(what)], str(exc), kind)
            return
        job.log("Rendering the preview video")
        assert self._em._dir is not None
        file_id = uuid.uuid4().hex
        file_name = f"{file_id}.mp4"
        path = self._em._dir / "results" / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        size = await asyncio.to_thread(
            render_preview, inputs, self._em.preview, path, output_size=job.script.output_size
        )
        self._em._storage.files[file_name] = StoredFile(path, "video/mp4", file_name)
        job.result_status = 200
        job.result_body = {
            "video": {
                "url": f"{job.script.result_base_url or job.base_url}/files/{file_name}",
                "content_type": "video/mp4",
                "file_name": file_name,
                "file_size": size,
            }
        }
        job.log("Preview ready")

    async def _load(self, job: Job, url: str, what: str) -> bytes:
        """The bytes of a file input: a data URI, a file on this emulator, or a loopback URL."""
        if url.startswith("data:"):
            return _decode_data_uri(url, what)
        parts = urlsplit(url)
        if url.startswith((self._em.base_url + "/", job.base_url + "/")):
            stored = self._em._storage.stored_for_path(parts.path)
            if stored is None:
                raise InputFetchFailed(f"{what} points at a file this emulator does not have")
            return await asyncio.to_thread(stored.path.read_bytes)
        if parts.hostname not in LOOPBACK_HOSTS:
            raise InputFetchFailed(
                f"{what} could not be downloaded: the emulator only fetches from 127.0.0.1"
            )
        try:
            async with self._em._client().get(url) as response:
                if response.status != 200:
                    raise InputFetchFailed(
                        f"{what} could not be downloaded (HTTP {response.status})"
                    )
                chunks: list[bytes] = []
                total = 0
                async for chunk in response.content.iter_chunked(1 << 16):
                    total += len(chunk)
                    if total > self._em.max_fetch_bytes:
                        raise InputFetchFailed(
                            f"{what} is larger than {self._em.max_fetch_bytes} bytes"
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise InputFetchFailed(
                f"{what} could not be downloaded ({type(exc).__name__})"
            ) from None


def _image_field(job_input: JobInput, index: int) -> str:
    if job_input.mode in ("frames", "scenes"):
        return f"image_urls.{index}"
    return "image_url"


def _loc(what: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in what.split(".")]


def _decode_data_uri(uri: str, what: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep:
        raise InputFetchFailed(f"{what} is not a valid data URI (no comma)")
    try:
        if header.endswith(";base64"):
            return base64.b64decode(payload, validate=True)
        return unquote(payload).encode("latin-1")
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise InputFetchFailed(f"{what} is a data URI with broken base64") from None
