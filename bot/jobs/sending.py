"""Sending a job to fal: the inputs uploaded, the job marked and sent in one shielded step, and
fal's answer recorded; what is sent is never sent twice (a stage of the JobRunner)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from typing import Any

from bot.fal import (
    FalClient,
    FalError,
    FalNotFound,
    FalPlatformError,
    FalSubmissionUnknown,
    RequestHandle,
)
from bot.jobs import reasons
from bot.jobs.reasons import Reason
from bot.jobs.runner_config import RunnerConfig
from bot.media import InputCache
from bot.ops.metrics import Metrics
from bot.pika import InvalidRequest, parse_request, to_fal_body
from bot.store import Job, JobState, LedgerKind, StoreBackend

log = logging.getLogger("bot.jobs.runner")

# A submit failed with one of these and no request id: fal's gateway refused it, fal never took it.
GATEWAY_REFUSALS = frozenset({502, 503, 504})
# Recording fal's request id is tried this many times, RECORD_RETRY_S x the try number apart.
RECORD_ATTEMPTS = 3
RECORD_RETRY_S = 0.5


class Sending:
    """The runner's sending stage. The runner provides the state and the ending it uses."""

    _store: StoreBackend
    _fal: FalClient
    _cache: InputCache
    _config: RunnerConfig
    _metrics: Metrics
    sending: set[asyncio.Future[None]]
    _sends: dict[str, asyncio.Future[None]]
    gone_endpoints: set[str]
    _clock: Callable[[], float]

    async def _fail(
        self,
        job: Job,
        reason: Reason,
        expected: Collection[JobState],
        to: JobState = JobState.FAILED,
        *,
        outcome: LedgerKind = LedgerKind.REFUND,
    ) -> None:
        raise NotImplementedError

    def _deadline_reason(self) -> Reason:
        raise NotImplementedError

    async def _submit(self, job: Job) -> None:
        margin = self._config.submit_margin
        if job.created_at + self._config.deadline_seconds - self._clock() < margin:
            # fal would barely have it before the bot cancelled it: not sent, nothing billed.
            await self._fail(job, self._deadline_reason(), {JobState.QUEUED})
            return
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
        if job.created_at + self._config.deadline_seconds - self._clock() < margin:
            # The uploads took what was left: still not sent, still nothing billed.
            await self._fail(job, self._deadline_reason(), {JobState.QUEUED})
            return
        # The SUBMITTING mark and the send run together, shielded: a deadline that fires
        # meanwhile waits for both (see run), so a mark committed just as the deadline cut it
        # off never leaves a job that looks sent but never was; an orderly stop waits for the
        # answer too (see `sending`), so it is recorded instead of left unknown.
        sending = asyncio.ensure_future(self._mark_and_send(job, body))
        self.sending.add(sending)
        self._sends[job.id] = sending
        sending.add_done_callback(self.sending.discard)
        sending.add_done_callback(lambda _: self._sends.pop(job.id, None))
        await asyncio.shield(sending)

    async def _mark_and_send(self, job: Job, body: dict[str, Any]) -> None:
        if await self._store.jobs.transition(
            job.id, JobState.SUBMITTING, expected={JobState.QUEUED}
        ):
            await self._send(job, body)
        # else: cancelled meanwhile, never sent

    async def _send(self, job: Job, body: dict[str, Any]) -> None:
        try:
            with self._metrics.fal_call("submit"):
                handle = await self._fal.submit(
                    job.endpoint_id, body, webhook_url=self._config.webhook_url
                )
        except FalSubmissionUnknown as error:
            await self._maybe_at_fal(job, error)
            return
        except FalError as error:
            if isinstance(error, FalNotFound) and error.what == "endpoint":
                self._switch_off(job.endpoint_id)
            if isinstance(error, FalPlatformError) and (error.status or 0) >= 500:
                if error.request_id is not None:
                    # fal assigned the request an id before failing its answer: the request
                    # exists there and may run and bill. Watch it by that id (never resend).
                    log.warning(
                        "job %s: fal answered the submit with HTTP %s but gave it the id %s; "
                        "watching it",
                        job.id,
                        error.status,
                        error.request_id,
                    )
                    await self._submitted(
                        job, self._fal.handle_for(job.endpoint_id, error.request_id)
                    )
                    return
                if error.status not in GATEWAY_REFUSALS:
                    # fal's own error after reading the request: it may exist there.
                    await self._maybe_at_fal(job, error)
                    return
            await self._fail(job, reasons.reason_for(error), {JobState.SUBMITTING})
            return
        await self._submitted(job, handle)

    async def _maybe_at_fal(self, job: Job, error: FalError) -> None:
        """A send whose outcome is unknown: fal may have the job, run it and bill it. It ends
        `unknown`; the member is refunded, the budgets keep counting it (never resent)."""
        await self._fail(
            job,
            reasons.reason_for(error),
            {JobState.SUBMITTING},
            JobState.UNKNOWN,
            outcome=LedgerKind.WRITE_OFF,
        )

    async def _submitted(self, job: Job, handle: RequestHandle) -> None:
        """Record fal's request id. It is logged first, so the operator can find the run at fal
        even if the database refuses the write; a write that keeps failing cancels the run at
        fal (best effort) and raises, and the job then ends as one whose send is unknown."""
        log.info("job %s submitted to fal as %s", job.id, handle.request_id)
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._store.jobs.transition(
                    job.id,
                    JobState.SUBMITTED,
                    expected={JobState.SUBMITTING},
                    fal_request_id=handle.request_id,
                    status_url=handle.status_url,
                    response_url=handle.response_url,
                    cancel_url=handle.cancel_url,
                    fal_queue_position=handle.queue_position,
                )
                return
            except Exception:
                if attempt < RECORD_ATTEMPTS:
                    log.warning(
                        "job %s: recording fal's request id %s failed; trying again",
                        job.id,
                        handle.request_id,
                        exc_info=True,
                    )
                    await asyncio.sleep(RECORD_RETRY_S * attempt)
                    continue
                log.error(
                    "job %s: fal's request id %s could not be recorded; cancelling it at fal",
                    job.id,
                    handle.request_id,
                )
                with contextlib.suppress(FalError):
                    await self._fal.cancel(handle)
                raise

    def _switch_off(self, endpoint_id: str) -> None:
        if endpoint_id not in self.gone_endpoints:
            log.error("fal says %s does not exist; its mode is switched off", endpoint_id)
            self.gone_endpoints.add(endpoint_id)
