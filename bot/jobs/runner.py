"""One job's life at fal and after: send, watch, fetch the video, deliver, then settle or refund."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from bot.fal import (
    CancelOutcome,
    Completed,
    FalClient,
    FalError,
    FalNotFound,
    FalPlatformError,
    FalSubmissionUnknown,
    InProgress,
    Queued,
    RequestHandle,
    Status,
)
from bot.jobs import reasons
from bot.jobs.messenger import Delivered, Messenger, Progress, Stage
from bot.jobs.progress import ProgressBoard
from bot.jobs.reasons import Reason
from bot.media import DownloadError, DownloadFailed, InputCache, download
from bot.metrics import Metrics
from bot.pika import InvalidRequest, parse_request, to_fal_body
from bot.store import DeliveryPath, Job, JobState, LedgerKind, Store

log = logging.getLogger(__name__)

AT_FAL = frozenset({JobState.SUBMITTED, JobState.RUNNING})
# Once a job is in one of these, fal's work is done: no deadline stops its delivery.
FAL_DONE = frozenset({JobState.COMPLETED, JobState.DOWNLOADED})
# Marks a job whose member asked to cancel it after it reached fal (survives restarts).
CANCEL_REQUESTED = "cancel_requested"
# Marks a job the bot asked fal to cancel because its deadline passed: if fal still finishes it
# (a running job may finish and bill), the video is delivered; if fal stops it, it is refunded.
GAVE_UP = "deadline_cancel"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """What the runner needs from the settings."""

    output_dir: Path
    data_uri_max_bytes: int
    output_max_bytes: int
    download_hosts: Collection[str]
    download_require_https: bool
    poll_interval: float
    progress_interval: float
    deadline_seconds: int
    webhook_url: str | None = None
    # fal's CDN drops a connection now and then: a failed download of a finished (and billed)
    # video is tried again this many times in all, waiting retry_delay x the try number between.
    download_attempts: int = 4
    download_retry_delay: float = 0.25


def download_rules(hosts: Collection[str], *fal_urls: str) -> tuple[frozenset[str], bool]:
    """The hosts results may come from and whether HTTPS is required.

    fal's own queue and storage hosts are always allowed. Plain HTTP is only accepted when
    every fal URL points at this machine (the emulator in tests and the sandbox).
    """
    fal_hosts = {urlsplit(url).hostname or "" for url in fal_urls}
    local = bool(fal_hosts) and fal_hosts <= LOOPBACK
    return frozenset({*hosts, *fal_hosts} - {""}), not local


class JobRunner:
    """Drives one job from wherever it stands to an end state, exactly once."""

    def __init__(
        self,
        *,
        store: Store,
        fal: FalClient,
        cache: InputCache,
        http: httpx.AsyncClient,
        messenger: Messenger,
        board: ProgressBoard,
        config: RunnerConfig,
        left_fal: Callable[[Job], None],
        endpoint_gone: Callable[[str], None],
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._fal = fal
        self._cache = cache
        self._http = http
        self._messenger = messenger
        self._board = board
        self._config = config
        self._left_fal = left_fal
        self._endpoint_gone = endpoint_gone
        self._clock = clock
        # Submits under way; an orderly stop lets them finish so their answer is recorded.
        self.sending: set[asyncio.Future[None]] = set()
        self._metrics = metrics or Metrics()
        # Set by a verified fal webhook for the request a job is watching (see wake).
        self._woken: dict[str, asyncio.Event] = {}

    async def run(self, job: Job, *, resumed: bool = False) -> None:
        """Take the job through its remaining stages; every stage is persisted before the next.

        The overall deadline bounds the time at fal; once fal has finished, the video is
        fetched and delivered whatever the clock says.
        """
        deadline = job.created_at + self._config.deadline_seconds
        try:
            async with asyncio.timeout(max(0.0, deadline - self._clock())):
                await self._stages(job, until=FAL_DONE)
        except TimeoutError:
            await self._give_up(job.id)
        try:
            await self._stages(job, until=frozenset(), resumed=resumed)
        finally:
            self._board.forget(job.id)

    async def _stages(self, job: Job, *, until: frozenset[JobState], resumed: bool = False) -> None:
        """Run stages until the job ends or reaches a state in `until`."""
        while True:
            current = await self._store.get_job(job.id)
            if current is None or current.terminal or current.state in until:
                return
            state = current.state
            if state is JobState.QUEUED:
                await self._submit(current)
            elif state is JobState.SUBMITTING:
                # Only a restart finds a job here: the submit may or may not have reached fal.
                # fal has no idempotency key and no lookup by our id, so the job is never sent
                # again; the operator gets what is needed to find a stray run on fal's side.
                log.warning(
                    "job %s: the bot stopped while sending it to %s (at %s); fal may have run "
                    "it unseen. The member is refunded and told.",
                    current.id,
                    current.endpoint_id,
                    current.updated_at,
                )
                await self._fail(
                    current, reasons.RESTARTED_WHILE_SENDING, {state}, JobState.UNKNOWN
                )
            elif state in AT_FAL:
                await self._watch(current)
            elif state is JobState.COMPLETED:
                await self._fetch(current)
            elif state is JobState.DOWNLOADED:
                await self._deliver(current, resumed=resumed)
            else:  # pragma: no cover - every state is handled above
                raise AssertionError(f"unhandled job state {state}")

    # -- stages ----------------------------------------------------------------------------

    async def _submit(self, job: Job) -> None:
        try:
            request = parse_request(job.request_json)
        except InvalidRequest:
            await self._fail(job, reasons.REQUEST_UNREADABLE, {JobState.QUEUED})
            return
        urls: dict[str, str] = {}
        try:
            for ref in request.inputs:
                data = await asyncio.to_thread(self._cache.get, ref.sha256)
                if data is None:
                    await self._fail(job, reasons.INPUT_GONE, {JobState.QUEUED})
                    return
                urls[ref.sha256] = await self._fal.file_input(
                    data, ref.content_type, max_data_uri_bytes=self._config.data_uri_max_bytes
                )
        except FalError as error:
            self._metrics.fal_failed("upload", error)
            await self._fail(job, reasons.reason_for(error), {JobState.QUEUED})
            return
        body = to_fal_body(request, urls)
        if not await self._store.transition(
            job.id, JobState.SUBMITTING, expected={JobState.QUEUED}
        ):
            return  # cancelled meanwhile
        # Once sent, the answer must be recorded: an orderly stop waits for it (see `sending`)
        # instead of cutting it off and leaving a job whose fate at fal is unknown.
        sending = asyncio.ensure_future(self._send(job, body))
        self.sending.add(sending)
        sending.add_done_callback(self.sending.discard)
        await asyncio.shield(sending)

    async def _send(self, job: Job, body: dict[str, Any]) -> None:
        try:
            with self._metrics.fal_call("submit"):
                handle = await self._fal.submit(
                    job.endpoint_id, body, webhook_url=self._config.webhook_url
                )
        except FalSubmissionUnknown as error:
            await self._fail(
                job, reasons.reason_for(error), {JobState.SUBMITTING}, JobState.UNKNOWN
            )
            return
        except FalError as error:
            if isinstance(error, FalNotFound) and error.what == "endpoint":
                self._endpoint_gone(job.endpoint_id)
            await self._fail(job, reasons.reason_for(error), {JobState.SUBMITTING})
            return
        await self._store.transition(
            job.id,
            JobState.SUBMITTED,
            expected={JobState.SUBMITTING},
            fal_request_id=handle.request_id,
            status_url=handle.status_url,
            response_url=handle.response_url,
            cancel_url=handle.cancel_url,
            fal_queue_position=handle.queue_position,
        )
        log.info("job %s submitted to fal as %s", job.id, handle.request_id)

    def handle(self, job: Job) -> RequestHandle:
        """The job's request at fal: the stored URLs, rebuilt from its id where missing."""
        assert job.fal_request_id is not None
        rebuilt = self._fal.handle_for(job.endpoint_id, job.fal_request_id)
        return RequestHandle(
            request_id=job.fal_request_id,
            endpoint_id=job.endpoint_id,
            status_url=job.status_url or rebuilt.status_url,
            response_url=job.response_url or rebuilt.response_url,
            cancel_url=job.cancel_url or rebuilt.cancel_url,
        )

    async def _watch(self, job: Job) -> None:
        handle = self.handle(job)
        ticker: asyncio.Task[None] | None = None
        started: float | None = float(job.started_at) if job.started_at else None
        try:
            async for status in self._statuses(handle):
                if isinstance(status, Queued):
                    if status.position != job.fal_queue_position:
                        await self._store.update_job(job.id, fal_queue_position=status.position)
                        job = await self._fresh(job)
                    self._board.report(job, Progress(Stage.FAL_QUEUE, position=status.position + 1))
                elif isinstance(status, InProgress):
                    if started is None:
                        started = self._clock()
                        await self._store.transition(
                            job.id,
                            JobState.RUNNING,
                            expected={JobState.SUBMITTED},
                            started_at=int(started),
                        )
                        job = await self._fresh(job)
                    if ticker is None:
                        ticker = asyncio.create_task(self._tick_generating(job, started))
                elif isinstance(status, Completed):
                    self._left_fal(job)
                    await self._completed(job, status)
                    return
        except FalError as error:
            self._metrics.fal_failed("watch", error)
            self._left_fal(job)
            await self._fail(job, reasons.reason_for(error), AT_FAL)
        finally:
            self._woken.pop(handle.request_id, None)
            if ticker is not None:
                ticker.cancel()

    def wake(self, request_id: str) -> bool:
        """fal says (by a verified webhook) the request finished: look at once, not at the next
        poll. False when no job here is watching that request."""
        woken = self._woken.get(request_id)
        if woken is None:
            return False
        woken.set()
        return True

    async def _statuses(self, handle: RequestHandle) -> AsyncIterator[Status]:
        """The request's statuses until Completed: fal's stream or polling, cut short by wake().

        Woken, the watch is dropped and the status asked once; fal's queue, not the webhook's
        payload, says how the request ended. Without webhooks this is just fal.watch.
        """
        woken = self._woken.setdefault(handle.request_id, asyncio.Event())
        while True:
            ended: Completed | None = None
            watch = self._fal.watch(handle, poll_interval=self._config.poll_interval)
            # Closed before the end is reported, so no stream outlives the watch.
            async with aclosing(_until(watch, woken)) as statuses:
                async for status in statuses:
                    if isinstance(status, Completed):
                        ended = status
                        break
                    yield status
            if ended is not None:
                yield ended
                return
            if not woken.is_set():
                return
            woken.clear()
            try:
                status = await self._fal.status(handle)
            except FalPlatformError as error:
                if not error.retryable:
                    raise
                log.warning(
                    "fal status of %s failed after its webhook: %s", handle.request_id, error
                )
                continue
            yield status
            if isinstance(status, Completed):
                return
            # The webhook came before fal's queue says so: go on watching.

    async def _tick_generating(self, job: Job, started: float) -> None:
        while True:
            self._board.report(job, Progress(Stage.GENERATING, elapsed_s=self._clock() - started))
            await asyncio.sleep(self._config.progress_interval)

    async def _completed(self, job: Job, status: Completed) -> None:
        fresh = await self._fresh(job)
        if not status.ok:
            if fresh.error_code == CANCEL_REQUESTED:
                await self._fail(fresh, reasons.CANCELLED, AT_FAL, JobState.CANCELLED)
            elif fresh.error_code == GAVE_UP:
                minutes = max(1, self._config.deadline_seconds // 60)
                await self._fail(fresh, reasons.deadline_passed(minutes), AT_FAL)
            else:
                self._metrics.fal_failed("model", status.error_type or "model_error")
                await self._fail(
                    fresh, reasons.model_failure(status.error, status.error_type), AT_FAL
                )
            return
        await self._store.transition(job.id, JobState.COMPLETED, expected=AT_FAL)

    async def _fetch(self, job: Job) -> None:
        self._board.report(job, Progress(Stage.DELIVERING))
        handle = self.handle(job)
        try:
            with self._metrics.fal_call("result"):
                result = await self._fal.result(handle)
            await self._store.update_job(job.id, video_url=result.video.url)
            dest = self._config.output_dir / f"{job.id}.mp4"
            size = await self._download(job, result.video.url, dest)
        except (FalError, DownloadError) as error:
            await self._fail(job, reasons.reason_for(error), {JobState.COMPLETED})
            return
        await self._store.transition(
            job.id,
            JobState.DOWNLOADED,
            expected={JobState.COMPLETED},
            output_path=str(dest),
            output_size=size,
        )

    async def _download(self, job: Job, url: str, dest: Path) -> int:
        """Download the video, trying again after network trouble (never after a refusal)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await download(
                    self._http,
                    url,
                    dest,
                    max_bytes=self._config.output_max_bytes,
                    allowed_hosts=self._config.download_hosts,
                    require_https=self._config.download_require_https,
                )
            except DownloadFailed as error:
                if attempt >= self._config.download_attempts:
                    raise
                log.info("job %s: download failed (%s); trying again", job.id, error)
                await asyncio.sleep(self._config.download_retry_delay * attempt)

    async def _deliver(self, job: Job, *, resumed: bool) -> None:
        assert job.output_path is not None
        self._board.forget(job.id)
        if not await asyncio.to_thread(Path(job.output_path).is_file):
            # The data folder lost the video (a restart on a new volume): nothing to deliver.
            await self._fail(job, reasons.VIDEO_LOST, {JobState.DOWNLOADED})
            return
        try:
            delivered = await self._messenger.deliver(job, Path(job.output_path), resumed=resumed)
        except Exception:
            # The messenger falls back on its own (DM, then keeping the video); should it fail
            # anyway, the job must still end: the video stays reachable through /pika job.
            log.exception("job %s: delivery failed unexpectedly; the video is kept", job.id)
            delivered = Delivered(DeliveryPath.KEPT, None, "delivery failed")
        await self._store.finish_job(
            job.id,
            JobState.DELIVERED,
            expected={JobState.DOWNLOADED},
            outcome=LedgerKind.SETTLE,
            result_message_id=delivered.message_id,
            delivery_path=delivered.path,
            interaction_token=None,
        )
        self._metrics.delivered(delivered.path)
        self._metrics.job_ended(job.mode, JobState.DELIVERED)
        log.info("job %s delivered (%s)", job.id, delivered.path)

    # -- endings ---------------------------------------------------------------------------

    async def _fail(
        self,
        job: Job,
        reason: Reason,
        expected: Collection[JobState],
        to: JobState = JobState.FAILED,
    ) -> None:
        moved = await self._store.finish_job(
            job.id,
            to,
            expected=expected,
            outcome=LedgerKind.REFUND,
            note=reason.code,
            error=reason.words,
            error_code=reason.code,
        )
        if not moved:
            return
        self._metrics.job_ended(job.mode, to)
        log.info("job %s ended %s: %s", job.id, to, reason.code)
        self._board.forget(job.id)
        await self.tell(job, reason.words)

    async def tell(self, job: Job, words: str) -> bool:
        """Tell the member why the job ended without a video, and note that they were told.

        A job refunded but never explained (the bot stopped in between) is told at the next
        start, because `told_at` stays empty until the message went out.
        """
        try:
            await self._messenger.tell_failure(await self._fresh(job), words)
        except Exception:
            log.exception("could not tell the member why job %s ended", job.id)
            return False
        await self._store.update_job(job.id, told_at=int(self._clock()))
        return True

    async def _give_up(self, job_id: str) -> None:
        job = await self._store.get_job(job_id)
        if job is None or job.terminal:
            return
        if job.state in AT_FAL and job.fal_request_id:
            outcome: CancelOutcome | None = None
            try:
                outcome = await self._fal.cancel(self.handle(job))
            except FalError as error:
                log.warning("cancel of job %s at fal failed: %s", job.id, error)
            if outcome is CancelOutcome.ALREADY_COMPLETED:
                # fal finished it (and billed for it): fetch and deliver it after all.
                log.info("job %s passed its deadline but fal had finished it", job.id)
                self._left_fal(job)
                await self._store.transition(job.id, JobState.COMPLETED, expected=AT_FAL)
                return
            if outcome is CancelOutcome.REQUESTED:
                # fal stops it, or finishes it anyway (and bills): keep watching to find out.
                await self._store.update_job(job.id, error_code=GAVE_UP)
                return
            self._left_fal(job)
        minutes = max(1, self._config.deadline_seconds // 60)
        # A submit cut off by the deadline may still have reached fal.
        to = JobState.UNKNOWN if job.state is JobState.SUBMITTING else JobState.FAILED
        expected = {JobState.QUEUED, JobState.SUBMITTING, *AT_FAL}
        await self._fail(job, reasons.deadline_passed(minutes), expected, to)

    async def _fresh(self, job: Job) -> Job:
        return await self._store.get_job(job.id) or job


async def _until(items: AsyncIterator[T], stop: asyncio.Event) -> AsyncGenerator[T, None]:
    """The items of `items` until `stop` is set; the item being waited for then is abandoned.

    `items` is closed on the way out.
    """
    stopped = asyncio.ensure_future(stop.wait())
    step: asyncio.Future[T] | None = None
    try:
        while not stop.is_set():
            step = asyncio.ensure_future(anext(items))
            await asyncio.wait({step, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                return
            finished, step = step, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        stopped.cancel()
        if step is not None and not step.done():
            step.cancel()
            # A generator must have stopped running before it can be closed.
            await asyncio.wait({step})
        if isinstance(items, AsyncGenerator):
            await items.aclose()
