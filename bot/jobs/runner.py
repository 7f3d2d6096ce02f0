"""One job's life at fal and after: send, watch, fetch the video, deliver, then settle or refund."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from pathlib import Path

import httpx

from bot.fal import (
    CancelOutcome,
    Completed,
    FalClient,
    FalError,
    FalNotFound,
    InProgress,
    Queued,
    RequestHandle,
    Status,
)
from bot.jobs import reasons
from bot.jobs.messenger import Delivered, Messenger, Progress, Stage
from bot.jobs.progress import ProgressBoard
from bot.jobs.reasons import Reason
from bot.jobs.runner_config import RunnerConfig, download_rules
from bot.jobs.sending import Sending
from bot.jobs.slots import FalSlots
from bot.jobs.watching import Watching
from bot.media import DownloadError, DownloadFailed, InputCache, download
from bot.ops.metrics import Metrics
from bot.store import DeliveryPath, Job, JobState, LedgerKind, StoreBackend

__all__ = ["AT_FAL", "JobRunner", "RunnerConfig", "download_rules"]

log = logging.getLogger(__name__)

AT_FAL = frozenset({JobState.SUBMITTED, JobState.RUNNING})
# Once a job is in one of these, fal's work is done: no deadline stops its delivery.
FAL_DONE = frozenset({JobState.COMPLETED, JobState.DOWNLOADED})
# Marks a job whose member asked to cancel it after it reached fal (survives restarts).
CANCEL_REQUESTED = "cancel_requested"
# Marks a job the bot asked fal to cancel because its deadline passed: if fal still finishes it
# (a running job may finish and bill), the video is delivered; if fal stops it, it is refunded.
GAVE_UP = "deadline_cancel"
# fal answering "no such request" this many times in a row ends the watch (see _watch).
UNKNOWN_REQUEST_LOOKS = 3


def is_unknown_request(error: FalError) -> bool:
    """fal's answer that it has no request by that id."""
    return isinstance(error, FalNotFound) and error.what == "request"


class JobRunner(Sending):
    """Drives one job from wherever it stands to an end state, exactly once."""

    def __init__(
        self,
        *,
        store: StoreBackend,
        fal: FalClient,
        cache: InputCache,
        http: httpx.AsyncClient,
        messenger: Messenger,
        board: ProgressBoard,
        config: RunnerConfig,
        slots: FalSlots,
        guild_gone: Callable[[int], bool] = lambda _: False,
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
        self._slots = slots
        self._guild_gone = guild_gone
        # Endpoints fal said it does not know: their mode is refused until the bot restarts.
        self.gone_endpoints: set[str] = set()
        self._clock = clock
        # Submits under way; an orderly stop lets them finish so their answer is recorded.
        self.sending: set[asyncio.Future[None]] = set()
        # The same, by job: a deadline waits for the job's send instead of judging it blind.
        self._sends: dict[str, asyncio.Future[None]] = {}
        # Failure messages under way (shielded from the job's deadlines; see _fail).
        self._telling: set[asyncio.Future[bool]] = set()
        self._metrics = metrics or Metrics()
        self._watching = Watching(fal, poll_interval=config.poll_interval)

    async def run(self, job: Job, *, resumed: bool = False) -> None:
        """Take the job through its remaining stages; every stage is persisted before the next.

        The overall deadline bounds the time at fal: then the bot asks fal to cancel and goes
        on watching (fal may still finish, or stop, the run). The hard deadline ends a job fal
        never finalises. Once fal has finished, the video is fetched and delivered whatever the
        clock says.
        """
        deadline = job.created_at + self._config.deadline_seconds
        try:
            async with asyncio.timeout(max(0.0, deadline - self._clock())):
                await self._stages(job, until=FAL_DONE)
        except TimeoutError:
            sending = self._sends.get(job.id)
            if sending is not None:
                # Never judge a job while its send is in flight: fal's answer says whether it
                # has the job (and the request id to cancel it by).
                await asyncio.wait({sending})
            await self._give_up(job.id)
        hard = job.created_at + self._config.hard_deadline
        try:
            async with asyncio.timeout(max(0.0, hard - self._clock())):
                await self._stages(job, until=FAL_DONE)
        except TimeoutError:
            await self._abandon(job.id)
        try:
            await self._stages(job, until=frozenset(), resumed=resumed)
        finally:
            self._board.forget(job.id)

    async def _stages(self, job: Job, *, until: frozenset[JobState], resumed: bool = False) -> None:
        """Run stages until the job ends or reaches a state in `until`."""
        while True:
            current = await self._store.jobs.get(job.id)
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
                    current,
                    reasons.RESTARTED_WHILE_SENDING,
                    {state},
                    JobState.UNKNOWN,
                    outcome=LedgerKind.WRITE_OFF,
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

    async def cancel(self, job: Job) -> CancelOutcome:
        """Ask fal to stop a job its member cancelled; fal's answer then ends it cancelled.

        Raises FalError when fal could not be asked.
        """
        await self._store.jobs.update(job.id, error_code=CANCEL_REQUESTED)
        try:
            outcome = await self._fal.cancel(self.handle(job))
        except FalError as error:
            log.warning("cancel of job %s at fal failed: %s", job.id, error)
            await self._store.jobs.update(job.id, error_code=None)
            raise
        if outcome is not CancelOutcome.REQUESTED:
            await self._store.jobs.update(job.id, error_code=None)
        return outcome

    async def stop(self, job: Job) -> None:
        """Stop fal running a job the bot gives up on, if it still can (what fal did, it bills)."""
        try:
            await self._fal.cancel(self.handle(job))
        except FalError as error:
            log.warning("cancel of job %s at fal failed: %s", job.id, error)

    async def _watch(self, job: Job) -> None:
        """Follow the job at fal until fal says it is done.

        A failed status check (an odd answer, a refused stream, fal unreachable) says nothing
        about the run itself, which fal may still be doing and billing: the watch starts again
        after a growing pause, until the hard deadline (see run) ends it.
        """
        handle = self.handle(job)
        ticker: asyncio.Task[None] | None = None
        started: float | None = float(job.started_at) if job.started_at else None
        failures = unknown = 0
        try:
            while True:
                try:
                    async for status in self._watching.statuses(handle):
                        failures = unknown = 0
                        if isinstance(status, Queued):
                            if status.position != job.fal_queue_position:
                                await self._store.jobs.update(
                                    job.id, fal_queue_position=status.position
                                )
                                job = await self._fresh(job)
                            self._board.report(
                                job, Progress(Stage.FAL_QUEUE, position=status.position + 1)
                            )
                        elif isinstance(status, InProgress):
                            if started is None:
                                started = self._clock()
                                await self._store.jobs.transition(
                                    job.id,
                                    JobState.RUNNING,
                                    expected={JobState.SUBMITTED},
                                    started_at=int(started),
                                )
                                job = await self._fresh(job)
                            if ticker is None:
                                ticker = asyncio.create_task(self._tick_generating(job, started))
                        elif isinstance(status, Completed):
                            self._slots.give_back(job)
                            await self._completed(job, status)
                            return
                except FalError as error:
                    self._metrics.fal_failed("watch", error)
                    failures += 1
                    if is_unknown_request(error):
                        unknown += 1
                        if unknown >= UNKNOWN_REQUEST_LOOKS:
                            # fal says, again and again, it has no such request: it is not
                            # running it. It may have billed what it did, so: written off.
                            self._slots.give_back(job)
                            await self._fail(
                                job,
                                reasons.reason_for(error),
                                AT_FAL,
                                outcome=LedgerKind.WRITE_OFF,
                            )
                            return
                    else:
                        unknown = 0
                    pause = self._config.watch_retry.backoff(failures)
                    log.warning(
                        "job %s: watching %s at fal failed (%s); looking again in %.1fs",
                        job.id,
                        handle.request_id,
                        error,
                        pause,
                    )
                    await asyncio.sleep(pause)
        finally:
            self._watching.forget(handle.request_id)
            if ticker is not None:
                ticker.cancel()

    def wake(self, request_id: str) -> bool:
        """fal says (by a verified webhook) the request finished: look at once, not at the next
        poll. False when no job here is watching that request."""
        return self._watching.wake(request_id)

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
                await self._fail(fresh, self._deadline_reason(), AT_FAL)
            else:
                self._metrics.fal_failed("model", status.error_type or "model_error")
                await self._fail(
                    fresh, reasons.model_failure(status.error, status.error_type), AT_FAL
                )
            return
        await self._store.jobs.transition(job.id, JobState.COMPLETED, expected=AT_FAL)

    async def _fetch(self, job: Job) -> None:
        """Fetch the finished video: from the file already on disk, else from the stored video
        URL, else from fal's result (a job resumed after a stop uses what it had)."""
        self._board.report(job, Progress(Stage.DELIVERING))
        dest = self._config.output_dir / f"{job.id}.mp4"
        try:
            # The download renames into place only when complete: a file here is whole.
            size = await asyncio.to_thread(_size_of, dest)
            if size is None:
                url = job.video_url
                if url is None:
                    with self._metrics.fal_call("result"):
                        result = await self._fal.result(self.handle(job))
                    url = result.video.url
                    await self._store.jobs.update(job.id, video_url=url)
                size = await self._download(job, url, dest)
        except (FalError, DownloadError) as error:
            # fal finished the run, so it billed it: the member is refunded, the budgets keep it.
            await self._fail(
                job, reasons.reason_for(error), {JobState.COMPLETED}, outcome=LedgerKind.WRITE_OFF
            )
            return
        await self._store.jobs.transition(
            job.id,
            JobState.DOWNLOADED,
            expected={JobState.COMPLETED},
            output_path=str(dest),
            output_size=size,
        )

    async def _download(self, job: Job, url: str, dest: Path) -> int:
        """Download the video, trying again after network trouble (never after a refusal)."""
        async for attempt in self._config.download_retry.attempts():
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
                if attempt.last:
                    raise
                log.info("job %s: download failed (%s); trying again", job.id, error)
        raise AssertionError("a retry policy makes at least one attempt")

    async def _deliver(self, job: Job, *, resumed: bool) -> None:
        assert job.output_path is not None
        self._board.forget(job.id)
        if not await asyncio.to_thread(Path(job.output_path).is_file):
            # The data folder lost the video (a restart on a new volume): nothing to deliver,
            # but fal billed it.
            await self._fail(
                job, reasons.VIDEO_LOST, {JobState.DOWNLOADED}, outcome=LedgerKind.WRITE_OFF
            )
            return
        try:
            delivered = await self._messenger.deliver(job, Path(job.output_path), resumed=resumed)
            # /pika job only shows a job in its own server: a video of a server the bot has left
            # that reached nobody is kept (shown again should the bot be added back), and given
            # back to the member, still counted as spent (fal billed it).
            unreached = delivered.path is DeliveryPath.KEPT and self._guild_gone(job.guild_id)
        except Exception:
            # The messenger falls back on its own (DM, then keeping the video); should it fail
            # anyway, the job must still end: the video stays reachable through /pika job.
            log.exception("job %s: delivery failed unexpectedly; the video is kept", job.id)
            delivered = Delivered(DeliveryPath.KEPT, None, "delivery failed")
            unreached = False
        moved = await self._store.jobs.finish(
            job.id,
            JobState.DELIVERED,
            expected={JobState.DOWNLOADED},
            outcome=LedgerKind.WRITE_OFF if unreached else LedgerKind.SETTLE,
            note=reasons.LEFT_SERVER.code if unreached else "",
            result_message_id=delivered.message_id,
            delivery_path=delivered.path,
            interaction_token=None,
        )
        if moved and unreached:
            log.info("job %s: the bot left its server and nobody took the video: refunded", job.id)
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
        *,
        outcome: LedgerKind = LedgerKind.REFUND,
    ) -> None:
        """End the job without a video; the member gets the credits back in full.

        `outcome` is REFUND when fal surely never ran (or billed) the job, WRITE_OFF when it may
        have: then the credits keep counting against the server's and the global budget.
        """
        moved = await self._store.jobs.finish(
            job.id,
            to,
            expected=expected,
            outcome=outcome,
            note=reason.code,
            error=reason.words,
            error_code=reason.code,
        )
        if not moved:
            return
        self._metrics.job_ended(job.mode, to)
        log.info("job %s ended %s (%s): %s", job.id, to, outcome, reason.code)
        self._board.forget(job.id)
        # Shielded: a deadline firing now must not cut the message off after the refund (the
        # member would hear nothing until a restart).
        telling = asyncio.ensure_future(self.tell(job, reason.words))
        self._telling.add(telling)
        telling.add_done_callback(self._telling.discard)
        await asyncio.shield(telling)

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
        await self._store.jobs.update(job.id, told_at=int(self._clock()))
        return True

    async def _give_up(self, job_id: str) -> None:
        """The deadline passed: a job not at fal yet ends refunded; one at fal is cancelled
        there and watched on until fal says how it ended (or the hard deadline)."""
        job = await self._store.jobs.get(job_id)
        if job is None or job.terminal or job.state in FAL_DONE:
            return
        if job.state in AT_FAL and job.fal_request_id:
            outcome: CancelOutcome | None = None
            try:
                outcome = await self._fal.cancel(self.handle(job))
            except FalError as error:
                # fal may still be running it: keep watching, and ask again at the hard deadline.
                log.warning("cancel of job %s at fal failed: %s", job.id, error)
            if outcome is CancelOutcome.ALREADY_COMPLETED:
                # fal finished it (and billed for it): fetch and deliver it after all.
                log.info("job %s passed its deadline but fal had finished it", job.id)
                self._slots.give_back(job)
                await self._store.jobs.transition(job.id, JobState.COMPLETED, expected=AT_FAL)
                return
            # Requested, failed, or fal does not know it (yet): fal stops it, finishes it
            # anyway (and bills), or never says; the watch finds out, bounded by the hard
            # deadline.
            if job.error_code != CANCEL_REQUESTED:
                # A member's cancel is what they asked for: it is what they are told.
                await self._store.jobs.update(job.id, error_code=GAVE_UP)
            return
        if job.state is JobState.SUBMITTING:
            # Only a send that ended without recording its answer leaves a job here.
            await self._fail(
                job,
                self._deadline_reason(),
                {JobState.SUBMITTING},
                JobState.UNKNOWN,
                outcome=LedgerKind.WRITE_OFF,
            )
            return
        # Never sent: fal never saw it.
        await self._fail(job, self._deadline_reason(), {JobState.QUEUED})

    async def _abandon(self, job_id: str) -> None:
        """The hard deadline passed and fal never said the job ended: ask fal once more to
        cancel it, then end it. The member is refunded; fal may have billed the run, so it is
        written off against the budgets."""
        job = await self._store.jobs.get(job_id)
        if job is None or job.terminal or job.state in FAL_DONE:
            return
        if job.state in AT_FAL and job.fal_request_id:
            handle = self.handle(job)
            # A bot that was down past the hard deadline has not looked yet: look once.
            try:
                status: Status | None = await self._fal.status(handle)
            except FalError as error:
                log.warning("last status check of job %s at fal failed: %s", job.id, error)
                status = None
            if isinstance(status, Completed):
                self._slots.give_back(job)
                await self._completed(job, status)
                return
            try:
                outcome = await self._fal.cancel(handle)
            except FalError as error:
                log.warning("last cancel of job %s at fal failed: %s", job.id, error)
            else:
                if outcome is CancelOutcome.ALREADY_COMPLETED:
                    self._slots.give_back(job)
                    await self._store.jobs.transition(job.id, JobState.COMPLETED, expected=AT_FAL)
                    return
        log.warning(
            "job %s: fal never said how %s ended within %ds; written off (fal may bill it)",
            job.id,
            job.fal_request_id,
            self._config.hard_deadline,
        )
        self._slots.give_back(job)
        await self._fail(
            job,
            reasons.fal_no_answer(max(1, self._config.hard_deadline // 60)),
            {JobState.QUEUED, JobState.SUBMITTING, *AT_FAL},
            outcome=LedgerKind.WRITE_OFF,
        )

    def _deadline_reason(self) -> Reason:
        return reasons.deadline_passed(max(1, self._config.deadline_seconds // 60))

    async def _fresh(self, job: Job) -> Job:
        return await self._store.jobs.get(job.id) or job


def _size_of(path: Path) -> int | None:
    """The size of the file at `path`, or None when there is no such file."""
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None
