"""The jobs the bot runs: accepting new ones, the fal slots, resuming after a restart, cancels."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Sequence
from enum import StrEnum
from typing import Any

import httpx

from bot.fal import CancelOutcome, FalClient
from bot.jobs import reasons
from bot.jobs.accounts import Accounts
from bot.jobs.messenger import Messenger, Progress, Stage
from bot.jobs.policy import check_channel, check_prompt, explain, request_texts
from bot.jobs.progress import ProgressBoard
from bot.jobs.queue import FairQueue
from bot.jobs.reasons import Reason
from bot.jobs.recovery import Recovery
from bot.jobs.runner import AT_FAL, JobRunner, RunnerConfig
from bot.jobs.slots import FalSlots
from bot.jobs.terms import Accepted, Limits, Requester
from bot.media import InputCache
from bot.ops.logs import bind_log_context
from bot.ops.metrics import Metrics
from bot.pika import SEED_MAX, PikaRequest, dump_request, price, revise
from bot.store import (
    Job,
    JobState,
    LedgerKind,
    NewJob,
    QuotaExceeded,
    StoreBackend,
)

# Accepted, Limits and Requester are the terms the jobs are asked on (see bot.jobs.terms).
__all__ = ["Accepted", "CancelResult", "Jobs", "Limits", "ModeUnavailable", "Requester"]

log = logging.getLogger(__name__)

FIRST_REPLY_GRACE_S = 10.0
DEADLINE_SWEEP_S = 60.0
SEND_DRAIN_S = 15.0
# Failures older than this are not announced again after a restart (the member has moved on).
UNTOLD_LOOKBACK_S = 24 * 3600
# A job whose task raised something unforeseen (a full disk, a locked database, a broken
# input cache) is tried again after each of these pauses, then ended with a refund.
RETRY_DELAYS_S = (5.0, 30.0, 120.0)
# How often the scheduler looks for unfinished jobs that no task owns (and adopts them).
ORPHAN_SWEEP_S = 60.0
# After a failed scheduling round, wait this long (doubling each time, at most the max).
SCHEDULER_RETRY_S = 0.5
SCHEDULER_RETRY_MAX_S = 30.0


class CancelResult(StrEnum):
    """What a cancel did, for the reply to whoever asked."""

    CANCELLED = "cancelled"  # stopped before fal started it; refunded
    REQUESTED = "requested"  # asked fal to stop; the member is told when it does
    TOO_LATE = "too_late"  # fal has finished or is finishing; the video will come
    ALREADY_ENDED = "already_ended"
    SENDING = "sending"  # being sent to fal this very moment; try again


class ModeUnavailable(Exception):
    """The endpoint of this mode is switched off (fal no longer offers it)."""

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(
            f"This mode is switched off: fal no longer offers {endpoint_id}. The operator has "
            "been told; the other modes still work."
        )
        self.endpoint_id = endpoint_id


class Jobs(Recovery):
    """Accepts jobs, sends at most `fal_concurrency` to fal at once in fair order, and resumes.

    Every job is written to SQLite (with its reservation) before it is queued, so the
    in-memory queue is only a view of the database: a restart rebuilds it.
    """

    def __init__(
        self,
        *,
        store: StoreBackend,
        fal: FalClient,
        runner_config: RunnerConfig,
        limits: Limits,
        messenger: Messenger,
        cache: InputCache,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        guild_gone: Callable[[int], bool] = lambda _: False,
        retry_delays: Sequence[float] = RETRY_DELAYS_S,
    ) -> None:
        """`guild_gone(guild_id)` is True only when the bot knows it is no longer in that
        server (never while its guild cache is still loading)."""
        self.store = store
        self.metrics = metrics or Metrics()
        self.limits = limits
        self.accounts = Accounts(store=store, limits=limits, clock=clock)
        self._messenger = messenger
        self._clock = clock
        self._guild_gone = guild_gone
        # Pauses before each new try of a job that raised; one failure more ends it.
        self.retry_delays = tuple(retry_delays)
        self._failures: dict[str, int] = {}
        # Jobs between two tasks: waiting out a pause before a retry, or being ended.
        self._held: set[str] = set()
        self._sweeps: list[asyncio.Future[None]] = []
        self._queue = FairQueue()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._deadline_seconds = runner_config.deadline_seconds
        self._wake = asyncio.Event()
        self._slots = FalSlots(self._queue, freed=self._wake)
        self._ended = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._board_task: asyncio.Task[None] | None = None
        self.board = ProgressBoard(
            messenger.show_progress, interval=runner_config.progress_interval
        )
        self._runner = JobRunner(
            store=store,
            fal=fal,
            cache=cache,
            http=http,
            messenger=messenger,
            board=self.board,
            config=runner_config,
            slots=self._slots,
            guild_gone=guild_gone,
            clock=clock,
            metrics=self.metrics,
        )

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every unfinished job, then start sending queued jobs to fal."""
        for job in await self.store.jobs.unfinished():
            self._adopt(job)
        log.info("resumed %d running and %d queued jobs", len(self._tasks), len(self._queue))
        since = int(self._clock()) - UNTOLD_LOOKBACK_S
        for job in await self.store.jobs.untold_endings(since=since):
            # Ended (and refunded) just before a stop, before the member heard why.
            self._side_task(self._runner.tell(job, job.error or reasons.CANCELLED.words))
        self._scheduler = asyncio.create_task(self._schedule(), name="pika-scheduler")
        self._board_task = asyncio.create_task(self.board.run(), name="pika-progress")

    def _side_task(self, work: Coroutine[Any, Any, object]) -> None:
        """Run a small piece of work beside the jobs (kept referenced; cancelled on close)."""
        task = asyncio.create_task(work)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def close(self) -> None:
        """Stop everything without changing any job: a restart picks them up where they are."""
        tasks: list[asyncio.Task[Any]] = [
            t for t in (self._scheduler, self._board_task) if t is not None
        ]
        tasks += list(self._tasks.values()) + list(self._side_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner.sending:
            # A submit already sent: wait for fal's answer so it is recorded, not left unknown.
            await asyncio.wait(self._runner.sending, timeout=SEND_DRAIN_S)
        self._tasks.clear()

    # -- accepting -------------------------------------------------------------------------

    def cost_of(self, request: PikaRequest) -> int:
        """What the request costs in credits, from the configured price list."""
        return price(request, self.limits.prices)

    def check_available(self, endpoint_id: str) -> None:
        """Refuse a mode whose endpoint fal no longer offers."""
        if endpoint_id in self.disabled_endpoints:
            raise ModeUnavailable(endpoint_id)

    async def accept(
        self, request: PikaRequest, requester: Requester, *, parent_job_id: str | None = None
    ) -> Accepted:
        """Write the job and reserve its cost in one transaction, then queue it.

        Raises QuotaRefused (a QuotaExceeded that says when credits reset; nothing written),
        NotAllowedHere, BlockedWord or ModeUnavailable. A request without a seed
        gets one now, so the member sees it and a re-roll can pick a different one.
        """
        self.check_available(request.endpoint.id)
        if getattr(request, "seed", None) is None:
            request = revise(request, seed=secrets.randbelow(SEED_MAX + 1))
        cost = self.cost_of(request)
        guild = await self.store.rules.settings(requester.guild_id)
        # Checked here too, not only by the command: buttons start jobs without a command.
        check_channel(guild, requester.channel_id, parent_id=requester.parent_channel_id)
        check_prompt(guild, request_texts(request))
        allowance = await self.accounts.allowance(
            requester.guild_id, requester.user_id, requester.role_ids
        )
        try:
            job = await self.store.jobs.create(
                NewJob(
                    mode=str(request.mode),
                    endpoint_id=request.endpoint.id,
                    request_json=dump_request(request),
                    guild_id=requester.guild_id,
                    channel_id=requester.channel_id,
                    user_id=requester.user_id,
                    input_hashes=[ref.sha256 for ref in request.inputs],
                    interaction_id=requester.interaction_id,
                    interaction_token=requester.interaction_token,
                    token_expires_at=requester.token_expires_at,
                    seed=getattr(request, "seed", None),
                    parent_job_id=parent_job_id,
                    upload_limit=requester.upload_limit,
                ),
                cost=cost,
                allowance=allowance,
                guild_budget=self.accounts.guild_budget(guild),
                global_budget=self.limits.global_daily_budget,
                max_unfinished=self.limits.max_jobs_per_member,
                period=self.accounts.period(),
                actor_id=requester.user_id,
            )
        except QuotaExceeded as error:
            raise explain(error, resets_at=self.accounts.resets_at()) from None
        self._queue.add(job.id, job.user_id, job.created_at)
        # Should the command never report its first reply (it failed), start the job anyway.
        asyncio.get_running_loop().call_later(FIRST_REPLY_GRACE_S, self._wake.set)
        position = self._queue.positions().get(job.id, 1)
        log.info("job %s accepted: %s for %d credits", job.id, job.endpoint_id, cost)
        return Accepted(job=job, position=position)

    async def progress_posted(self, job: Job, message_id: int | None, position: int) -> None:
        """The command showed the first progress reply: remember it, and let the job start.

        The job is only scheduled now, so that no progress edit can overtake the first reply.
        """
        if message_id is not None:
            await self.store.jobs.update(job.id, progress_message_id=message_id)
            job = await self.store.jobs.get(job.id) or job
        self.board.shown_now(job, Progress(Stage.WAITING, position=position))
        self._wake.set()

    async def wait_ended(self, job_id: str) -> Job | None:
        """Wait until this process has nothing more to do for the job; the job as it stands.

        For tests and orderly shutdowns: a job waiting in the queue is waited for too.
        """
        while True:
            # Taken before looking, so a job spawned while we look still wakes us. The event is
            # replaced, never cleared: with many waiters, one clearing it could hide a spawn
            # from another that is still looking (and the last jobs would be waited for forever).
            ended = self._ended
            task = self._tasks.get(job_id)
            if task is not None:
                await asyncio.wait({task})
                continue
            job = await self.store.jobs.get(job_id)
            if job is None or job.terminal:
                return job
            if job_id in self._tasks:  # taken up again while we looked
                continue
            if job_id in self._held:  # between two tries
                await ended.wait()
                continue
            # A queued job out of the queue is between the scheduler's pick and its task.
            if job.id not in self._queue and job.state is not JobState.QUEUED:
                return job
            await ended.wait()

    async def get(self, job_id: str) -> Job | None:
        """A job by its id, or None."""
        return await self.store.jobs.get(job_id)

    @property
    def waiting_count(self) -> int:
        """Jobs waiting in the bot's queue for a fal slot."""
        return len(self._queue)

    @property
    def at_fal_count(self) -> int:
        """Jobs of this process at fal now."""
        return len(self._slots)

    @property
    def alive(self) -> bool:
        """Whether the scheduler and the progress board are running (for the health check)."""
        tasks = (self._scheduler, self._board_task)
        return all(task is not None and not task.done() for task in tasks)

    # -- scheduling ------------------------------------------------------------------------

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        swept = loop.time()
        failures = 0
        while True:
            # Cleared before looking, not after: a slot freed while the positions are being
            # reported must wake the next round, not be lost.
            self._wake.clear()
            try:
                if self._sweeps or loop.time() - swept >= ORPHAN_SWEEP_S:
                    swept = loop.time()
                    await self._sweep_now()
                await self._give_up_expired()
                await self._start_waiting()
                failures = 0
            except Exception:
                # One failed round (a locked database, say) must not end the scheduler: every
                # job after it would wait for a restart. Try again after a growing pause.
                failures += 1
                pause = min(SCHEDULER_RETRY_S * 2 ** (failures - 1), SCHEDULER_RETRY_MAX_S)
                log.exception("a scheduling round failed; trying again in %.1f s", pause)
                await asyncio.sleep(pause)
                continue
            if self._queue:
                # Jobs waiting for a slot can pass their deadline too: look again now and then.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(DEADLINE_SWEEP_S):
                        await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(ORPHAN_SWEEP_S):
                        await self._wake.wait()

    async def _start_waiting(self) -> None:
        """Send waiting jobs to fal while slots are free, then report the queue's places."""
        started = False
        while len(self._slots) < self.limits.fal_concurrency:
            item = self._queue.pop()
            if item is None:
                break
            try:
                job = await self.store.jobs.get(item.job_id)
            except BaseException:
                # Not lost: back in its place, for the next round.
                self._queue.finished(item.user_id)
                self._queue.add(item.job_id, item.user_id, item.created_at)
                raise
            if job is None or job.state is not JobState.QUEUED:
                self._queue.finished(item.user_id)
                continue
            self._slots.take(job)
            self._spawn(job, resumed=False)
            started = True
        if started or self._queue:
            await self._report_positions()

    def _adopt(self, job: Job) -> None:
        """Take up a job from where it stands: back in the queue, or a task of its own."""
        if job.state is JobState.QUEUED:
            self._queue.add(job.id, job.user_id, job.created_at)
            self._wake.set()
            self._signal_ended()
            return
        if job.state in AT_FAL or job.state is JobState.SUBMITTING:
            self._slots.resume(job)
        self._spawn(job, resumed=True)

    async def _give_up_expired(self) -> None:
        """Jobs that waited in the bot's queue past their deadline end now, refunded, without
        taking a fal slot (the runner gives up at once on a job past its deadline)."""
        cutoff = self._clock() - self._deadline_seconds
        for item in self._queue.accepted_before(cutoff):
            job = await self.store.jobs.get(item.job_id)
            self._queue.remove(item.job_id)
            if job is not None and job.state is JobState.QUEUED:
                self._spawn(job, resumed=False)

    async def _report_positions(self) -> None:
        for job_id, place in self._queue.positions().items():
            job = await self.store.jobs.get(job_id)
            if job is not None:
                self.board.report(job, Progress(Stage.WAITING, position=place))

    def _signal_ended(self) -> None:
        """Wake every wait_ended() to look again (a job started or left the queue)."""
        ended, self._ended = self._ended, asyncio.Event()
        ended.set()

    def _spawn(self, job: Job, *, resumed: bool) -> None:
        task = asyncio.create_task(self._run(job, resumed=resumed), name=f"pika-job-{job.id}")
        self._tasks[job.id] = task
        self._signal_ended()

    async def _run(self, job: Job, *, resumed: bool) -> None:
        # Every log line of this job's task carries its ids (bot.ops.logs).
        bind_log_context(job_id=job.id, guild_id=job.guild_id, user_id=job.user_id)
        failed = False
        try:
            if job.state is JobState.QUEUED:
                # Not before Discord's guilds have arrived: until then no server looks gone,
                # and a removal while the bot was down would go unnoticed (and be billed).
                await self._messenger.ready()
            if job.state is JobState.QUEUED and self._guild_gone(job.guild_id):
                # Never send fal (and pay for) a job of a server the bot is no longer in.
                if await self._end_queued(job, reasons.LEFT_SERVER):
                    await self._runner.tell(job, reasons.LEFT_SERVER.words)
            else:
                await self._runner.run(job, resumed=resumed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: unexpected error", job.id)
            failed = True
        finally:
            self._slots.give_back(job)
            self._tasks.pop(job.id, None)
            self._wake.set()
        # Held before this task ends, so neither the sweep nor wait_ended sees a gap.
        if failed:
            self._failed(job.id)
        else:
            self._failures.pop(job.id, None)

    # -- leaving a server ------------------------------------------------------------------

    async def guild_removed(self, guild_id: int) -> None:
        """The bot was removed from a server: its jobs not yet sent to fal end, refunded.

        Jobs already at fal go on: fal runs (and bills) them anyway, and the channel now
        refuses the video, so the messenger sends it by DM; if the DM is refused too, the job
        ends kept and refunded (see JobRunner._deliver).
        """
        ended = 0
        for job in await self.store.jobs.unfinished():
            if job.guild_id != guild_id or job.state is not JobState.QUEUED:
                continue
            if await self._end_queued(job, reasons.LEFT_SERVER):
                ended += 1
                self._side_task(self._runner.tell(job, reasons.LEFT_SERVER.words))
        log.info("removed from guild %s: %d waiting jobs cancelled and refunded", guild_id, ended)

    async def _end_queued(self, job: Job, reason: Reason, *, actor_id: int = 0) -> bool:
        """Cancel a job not yet sent to fal, refunded; False if it was no longer waiting."""
        moved = await self.store.jobs.finish(
            job.id,
            JobState.CANCELLED,
            expected={JobState.QUEUED},
            outcome=LedgerKind.REFUND,
            actor_id=actor_id,
            note=reason.code,
            error=reason.words,
            error_code=reason.code,
        )
        if moved:
            self.metrics.job_ended(job.mode, JobState.CANCELLED)
            self._queue.remove(job.id)
            self.board.forget(job.id)
            self._wake.set()
            self._signal_ended()
            log.info("job %s cancelled: %s", job.id, reason.code)
        return moved

    def fal_webhook(self, request_id: str) -> bool:
        """A verified fal webhook says this request finished: its job looks at fal at once.

        False when no job here is watching it (ended already, or not watching yet: its first
        status check will see the result anyway).
        """
        return self._runner.wake(request_id)

    @property
    def disabled_endpoints(self) -> set[str]:
        """Endpoints fal said it does not know: their modes are refused until the bot restarts."""
        return self._runner.gone_endpoints

    # -- cancelling ------------------------------------------------------------------------

    async def _tell_cancelled(self, job_id: str) -> None:
        job = await self.store.jobs.get(job_id)
        if job is None:
            return
        await self._runner.tell(job, reasons.CANCELLED.words)

    async def cancel(self, job_id: str, *, actor_id: int) -> CancelResult:
        """Cancel a job: at once while it waits in the bot's queue, else by asking fal."""
        job = await self.store.jobs.get(job_id)
        if job is None or job.terminal:
            return CancelResult.ALREADY_ENDED
        if job.state is JobState.QUEUED:
            if await self._end_queued(job, reasons.CANCELLED, actor_id=actor_id):
                # The public reply still says "waiting": say it was cancelled, without holding
                # up the answer to whoever clicked (Discord gives that 3 seconds).
                if job.id in self._tasks:
                    # The scheduler had just started it: its task sees the cancel and ends.
                    self._side_task(self._tell_cancelled(job.id))
                else:
                    told = asyncio.create_task(self._tell_cancelled(job.id), name=f"pika-{job.id}")
                    self._tasks[job.id] = told
                    told.add_done_callback(lambda _: self._tasks.pop(job.id, None))
                self._wake.set()
                self._signal_ended()
                return CancelResult.CANCELLED
            return await self.cancel(job_id, actor_id=actor_id)
        if job.state is JobState.SUBMITTING:
            return CancelResult.SENDING
        if job.state not in AT_FAL or job.fal_request_id is None:
            return CancelResult.TOO_LATE
        outcome = await self._runner.cancel(job)
        if outcome is CancelOutcome.REQUESTED:
            return CancelResult.REQUESTED
        return CancelResult.TOO_LATE
