"""What the jobs service does when a job's task fails unexpectedly: try it again after a pause
(never resending what was sent), end it plainly after repeated failure, and sweep for jobs no
task owns. A part of Jobs (bot/jobs/service.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.jobs import reasons
from bot.jobs.progress import ProgressBoard
from bot.jobs.queue import FairQueue
from bot.jobs.runner import AT_FAL, JobRunner
from bot.ops.metrics import Metrics
from bot.store import Job, JobState, LedgerKind, StoreBackend

log = logging.getLogger("bot.jobs.service")


class Recovery:
    """Retries, the giving up after them, and the sweep; Jobs provides the state."""

    store: StoreBackend
    metrics: Metrics
    board: ProgressBoard
    retry_delays: tuple[float, ...]
    _runner: JobRunner
    _queue: FairQueue
    _tasks: dict[str, asyncio.Task[None]]
    _held: set[str]
    _failures: dict[str, int]
    _sweeps: list[asyncio.Future[None]]
    _wake: asyncio.Event

    def _adopt(self, job: Job) -> None:
        raise NotImplementedError

    def _signal_ended(self) -> None:
        raise NotImplementedError

    def _side_task(self, work: Coroutine[Any, Any, object]) -> None:
        raise NotImplementedError

    async def sweep(self) -> None:
        """Have the scheduler look for orphaned jobs now (it does so every ORPHAN_SWEEP_S)."""
        done = asyncio.get_running_loop().create_future()
        self._sweeps.append(done)
        self._wake.set()
        await done

    async def _sweep_now(self) -> None:
        # Run by the scheduler only, so no job it is picking looks orphaned halfway through.
        asked, self._sweeps = self._sweeps, []
        try:
            await self._adopt_orphans()
        except Exception:
            log.exception("the sweep for jobs without a task failed; it runs again later")
        finally:
            for done in asked:
                if not done.done():
                    done.set_result(None)

    async def _adopt_orphans(self) -> None:
        """Unfinished jobs that no task owns (a task that died, a retry that could not be set
        up) are taken up again from where they stand."""
        for job in await self.store.jobs.unfinished():
            if job.id in self._tasks or job.id in self._queue or job.id in self._held:
                continue
            if job.state is JobState.SUBMITTING and self._runner.sending:
                continue  # its send may still be landing: look next time
            log.warning("job %s (%s) had no task; taking it up again", job.id, job.state)
            if self._failures.get(job.id, 0) > len(self.retry_delays):
                self._hold(job.id, self._end_failing(job.id))
            else:
                self._adopt(job)

    # -- unexpected errors -----------------------------------------------------------------

    def _failed(self, job_id: str) -> None:
        failures = self._failures.get(job_id, 0) + 1
        self._failures[job_id] = failures
        if failures > len(self.retry_delays):
            self._hold(job_id, self._end_failing(job_id))
            return
        delay = self.retry_delays[failures - 1]
        log.warning("job %s: try %d failed; trying again in %.0f s", job_id, failures, delay)
        self._hold(job_id, self._retry(job_id, delay))

    def _hold(self, job_id: str, work: Coroutine[Any, Any, None]) -> None:
        """Do `work` for a job that has no task of its own meanwhile."""
        self._held.add(job_id)

        async def held() -> None:
            try:
                await work
            except Exception:
                log.exception("job %s could not be taken up again; the sweep will", job_id)
            finally:
                self._held.discard(job_id)
                self._signal_ended()

        self._side_task(held())

    async def _retry(self, job_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._runner.sending:
            # A send still landing is recorded first: a retry that found its job in
            # SUBMITTING would take it as unknown (and fal may be running it).
            await asyncio.wait(set(self._runner.sending))
        job = await self.store.jobs.get(job_id)
        if job is not None and not job.terminal:
            # Resumed: a video posted just before the error is found, not posted twice.
            self._adopt(job)

    async def _end_failing(self, job_id: str) -> None:
        """A job that raised on every try ends refunded, and the member is told plainly."""
        job = await self.store.jobs.get(job_id)
        if job is None or job.terminal:
            return
        if job.state in AT_FAL and job.fal_request_id is not None:
            await self._runner.stop(job)
        # A job stuck in SUBMITTING may have reached fal: unknown. Once sent, fal may have
        # billed it: the member gets the credits back, but they still count as spent.
        to = JobState.UNKNOWN if job.state is JobState.SUBMITTING else JobState.FAILED
        sent = job.state is not JobState.QUEUED
        reason = reasons.KEPT_FAILING
        moved = await self.store.jobs.finish(
            job.id,
            to,
            expected={job.state},
            outcome=LedgerKind.WRITE_OFF if sent else LedgerKind.REFUND,
            note=reason.code,
            error=reason.words,
            error_code=reason.code,
        )
        if not moved:
            return
        self._failures.pop(job.id, None)
        self._queue.remove(job.id)
        self.board.forget(job.id)
        self.metrics.job_ended(job.mode, to)
        log.error(
            "job %s ended %s after %d failed tries; refunded",
            job.id,
            to,
            1 + len(self.retry_delays),
        )
        await self._runner.tell(job, reason.words)
