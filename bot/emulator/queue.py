"""The emulator's queue routes: submit, status, status stream, result and cancel, as fal answers."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from bot.emulator.answers import drop, invalid, not_found, wants_logs
from bot.emulator.jobs import Job, Submission
from bot.emulator.schemas import ENDPOINTS, InputInvalid, JobInput, validate

if TYPE_CHECKING:
    from bot.emulator.server import FalEmulator


class QueueRoutes:
    """What queue.fal.run answers, for every Pika endpoint the emulator knows."""

    def __init__(self, emulator: FalEmulator) -> None:
        self._em = emulator

    async def submit_or_404(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return not_found(f"No route for {request.method} {request.path}")
        return await self._submit(request, request.match_info["endpoint"])

    async def _submit(self, request: web.Request, endpoint_id: str) -> web.StreamResponse:
        self._em.counts["submit"] += 1
        fault = self._em._take_fault("submit")
        if fault is not None and not fault.after_accept:
            answer = await self._em._apply_fault(request, fault)
            if answer is not None:
                return answer
        if not self._em._authorized(request):
            return self._em._unauthorized(request)
        if endpoint_id not in ENDPOINTS or endpoint_id in self._em._removed:
            return not_found(f"Application '{endpoint_id}' not found")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return invalid(
                [{"loc": ["body"], "msg": "Input should be valid JSON", "type": "json_invalid"}]
            )
        try:
            job_input = validate(endpoint_id, body)
        except InputInvalid as exc:
            return invalid(exc.detail)

        job = self._create_job(request, endpoint_id, body, job_input)
        if fault is not None:
            answer = await self._em._apply_fault(request, fault, job.request_id)
            if answer is not None:
                return answer
        urls = self._urls(job)
        return web.json_response(
            {
                "request_id": job.request_id,
                "status": "IN_QUEUE",
                "queue_position": job.queue_position,
                **urls,
            },
            headers={"x-fal-request-id": job.request_id},
        )

    def _create_job(
        self, request: web.Request, endpoint_id: str, body: dict[str, Any], job_input: JobInput
    ) -> Job:
        script = (
            self._em._next_scripts.pop(0) if self._em._next_scripts else self._em.default_script
        )
        request_id = str(uuid.uuid4())
        owner_app = "/".join(endpoint_id.split("/")[:2])
        job = Job(
            request_id=request_id,
            endpoint_id=endpoint_id,
            owner_app=owner_app,
            base_url=self._em._base(request),
            job_input=job_input,
            script=script,
            queue_position=script.queue_position,
            webhook_url=request.query.get("fal_webhook"),
        )
        self._em._jobs[request_id] = job
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        self._em.submissions.append(
            Submission(
                request_id=request_id,
                endpoint_id=endpoint_id,
                body=body,
                headers=headers,
                script=script,
                received_at=datetime.now(UTC),
                scenes_field=job_input.scenes_field,
                duration_type=job_input.duration_type,
                ignored_fields=tuple(job_input.ignored_fields),
                webhook_url=request.query.get("fal_webhook"),
            )
        )
        job.task = asyncio.create_task(self._em._life.run(job), name=f"fal-emulator-{request_id}")
        return job

    def _urls(self, job: Job) -> dict[str, str]:
        base_url = job.script.handle_base_url or job.base_url
        base = f"{base_url}/{job.owner_app}/requests/{job.request_id}"
        return {
            "status_url": f"{base}/status",
            "response_url": base,
            "cancel_url": f"{base}/cancel",
        }

    def _find(self, request: web.Request) -> Job | None:
        info = request.match_info
        job = self._em._jobs.get(info["id"])
        if job is None or job.owner_app != f"{info['owner']}/{info['app']}":
            return None
        return job

    def _status_body(self, job: Job, with_logs: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": job.stage,
            "request_id": job.request_id,
            **self._urls(job),
        }
        if job.stage == "IN_QUEUE":
            body["queue_position"] = job.queue_position
            return body
        body["logs"] = list(job.logs) if with_logs else None
        if job.stage == "COMPLETED":
            started = job.started_at if job.started_at is not None else job.completed_at
            inference = (job.completed_at or 0.0) - (started or 0.0)
            body["metrics"] = {"inference_time": round(inference, 3)}
            if job.error is not None:
                body["error"] = job.error
                body["error_type"] = job.error_type
        return body

    async def status(self, request: web.Request) -> web.StreamResponse:
        answer = await self._em._intake(request, "status")
        if answer is not None:
            return answer
        job = self._find(request)
        if job is None:
            return not_found("Request not found")
        body = self._status_body(job, wants_logs(request))
        return web.json_response(
            body,
            status=200 if job.stage == "COMPLETED" else 202,
            headers={"x-fal-request-id": job.request_id},
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        answer = await self._em._intake(request, "stream")
        if answer is not None:
            return answer
        job = self._find(request)
        if job is None:
            return not_found("Request not found")
        with_logs = wants_logs(request)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "x-fal-request-id": job.request_id,
            }
        )
        sent, seen = 0, -1
        limit = job.script.stream_break_after
        try:
            # Inside the try: a client that gave up during a scripted delay is already gone.
            await response.prepare(request)
            while not self._em._closing.is_set():
                if job.version != seen:
                    seen = job.version
                    if limit is not None and sent >= limit:
                        drop(request)
                        return response
                    event = json.dumps(self._status_body(job, with_logs))
                    await response.write(f"data: {event}\n\n".encode())
                    sent += 1
                    if job.stage == "COMPLETED":
                        break
                    continue
                changed = job.changed
                try:
                    await asyncio.wait_for(changed.wait(), self._em.keepalive_seconds)
                except TimeoutError:
                    if limit is not None and sent >= limit:
                        # A held job may not change for a long time: break at the keep-alive.
                        drop(request)
                        return response
                    await response.write(b": keep-alive\n\n")
            await response.write_eof()
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass  # the client went away; nothing to tell it
        return response

    async def result(self, request: web.Request) -> web.StreamResponse:
        answer = await self._em._intake(request, "result")
        if answer is not None:
            return answer
        job = self._find(request)
        if job is None or job.expired:
            return not_found("Request not found; its result may have expired")
        headers = {"x-fal-request-id": job.request_id}
        if job.stage != "COMPLETED":
            where = "in queue" if job.stage == "IN_QUEUE" else "in progress"
            return web.json_response(
                {"detail": f"Request is still {where}"}, status=400, headers=headers
            )
        return web.json_response(
            job.result_body, status=job.result_status, headers={**headers, **job.result_headers}
        )

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        answer = await self._em._intake(request, "cancel")
        if answer is not None:
            return answer
        job = self._find(request)
        if job is None:
            return web.json_response({"status": "NOT_FOUND"}, status=404)
        headers = {"x-fal-request-id": job.request_id}
        if job.stage == "COMPLETED":
            return web.json_response({"status": "ALREADY_COMPLETED"}, status=400, headers=headers)
        job.cancelled = True
        if job.stage == "IN_QUEUE":
            job.wake.set()
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202, headers=headers)
