"""The local fal emulator: an aiohttp server speaking fal's queue, storage and CDN protocols.

One server answers what fal splits over queue.fal.run, rest.fal.ai and its CDN: point both the
queue URL and the REST URL at `base_url`. Jobs are scripted (JobScript) and requests can be made
to fail (Fault); every request is counted by kind, so tests and benchmarks can assert on what the
bot sent. Choices where fal's behaviour is not documented:
- a request cancelled while IN_QUEUE ends COMPLETED with error "Request was cancelled" and
  error_type "request_cancelled"; its result answers 400 with that detail and error_type;
- a request cancelled while IN_PROGRESS answers 202 too, but still completes and delivers;
- the result of an unfinished request answers 400 with a plain-string detail;
- a model error (scripted, or an input that cannot be downloaded or decoded) ends COMPLETED with
  error/error_type, and its result answers 422 with a detail list;
- a submit with ?fal_webhook=URL gets a callback POSTed there on completion, signed like fal's
  with an Ed25519 key the emulator makes (its public half at /.well-known/jwks.json); a refused
  or failed callback is tried again a few times, like fal does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import random
import shutil
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal
from urllib.parse import quote, unquote, urlsplit

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.emulator.render import (
    InputUnreadable,
    PreviewSettings,
    RenderInputs,
    decode_image,
    decode_video,
    render_preview,
)
from bot.emulator.schemas import ENDPOINTS, InputInvalid, JobInput, validate
from bot.emulator.scripts import Fault, JobScript, ScriptError

log = logging.getLogger(__name__)

Stage = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
STAGES: tuple[Stage, ...] = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")

# Bodies carry data URIs and uploads carry videos: far above aiohttp's 1 MiB default.
MAX_BODY_BYTES = 128 * 1024 * 1024
MAX_FETCH_BYTES = 64 * 1024 * 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CDN_TOKEN_SECONDS = 3600
WEBHOOK_USER_ID = "emulator-user"
WEBHOOK_TIMEOUT_SECONDS = 10.0


class UnknownRequest(KeyError):
    """No request with this id was ever submitted to this emulator."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id

    def __str__(self) -> str:
        return f"the emulator has no request {self.request_id!r}"


class InputFetchFailed(Exception):
    """A file input could not be downloaded; the message says which and why."""


@dataclass(frozen=True)
class Submission:
    """One accepted submit as received (header names lower-cased, Authorization left out)."""

    request_id: str
    endpoint_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    script: JobScript
    received_at: datetime
    scenes_field: str | None = None
    duration_type: str | None = None
    ignored_fields: tuple[str, ...] = ()
    webhook_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["received_at"] = self.received_at.isoformat()
        data["script"] = asdict(self.script)
        return data


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to POST a request's callback: the answer's status, or why there was none."""

    request_id: str
    url: str
    attempt: int
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class _Job:
    request_id: str
    endpoint_id: str
    owner_app: str
    base_url: str
    job_input: JobInput
    script: JobScript
    stage: Stage = "IN_QUEUE"
    queue_position: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)
    started_at: float | None = None
    completed_at: float | None = None
    error: str | None = None
    error_type: str | None = None
    result_status: int = 200
    result_body: Any = None
    result_headers: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False
    expired: bool = False
    # advance() names the stage it releases, so a late release never skips the next stage's hold.
    release_stage: Stage | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    version: int = 0
    task: asyncio.Task[None] | None = None
    holds_slot: bool = False
    webhook_url: str | None = None


@dataclass
class _PendingFault:
    fault: Fault
    remaining: int


@dataclass
class _Stored:
    path: Path
    content_type: str
    file_name: str


class FalEmulator:
    """A fal stand-in on 127.0.0.1: start it, point the bot's queue and REST URLs at base_url.

    Requires `Authorization: Key <key>` on the queue and storage-token endpoints, like fal;
    key=None accepts any non-empty key (a sandbox without a real one).
    """

    # Called with every emulator as it closes, submissions complete (the test session's
    # whole-suite scan for leaked secrets registers here).
    on_close: ClassVar[list[Callable[[FalEmulator], None]]] = []

    def __init__(
        self,
        key: str | None = "test-key",
        *,
        preview: PreviewSettings | None = None,
        keepalive_seconds: float = 15.0,
        control: bool = True,
        data_dir: Path | None = None,
        max_fetch_bytes: int = MAX_FETCH_BYTES,
        concurrency: int | None = None,
        webhook_key: Ed25519PrivateKey | None = None,
        webhook_attempts: int = 3,
    ) -> None:
        self._key = key
        # Newest first: the first signs callbacks, all are published (as during a rotation).
        self._webhook_keys = [webhook_key or Ed25519PrivateKey.generate()]
        self.webhook_attempts = webhook_attempts
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._webhook_tasks: dict[str, asyncio.Task[None]] = {}
        self.preview = preview or PreviewSettings()
        self.keepalive_seconds = keepalive_seconds
        self.control = control
        self.max_fetch_bytes = max_fetch_bytes
        # Like a fal account's limit on IN_PROGRESS requests: the rest wait IN_QUEUE, in order.
        self.concurrency = concurrency
        self._running = 0
        self._waiting: deque[_Job] = deque()
        self.default_script = JobScript()
        self.counts: Counter[str] = Counter()
        self.faulted: Counter[str] = Counter()  # requests answered by a fault, by kind
        self.submissions: list[Submission] = []
        self._data_dir = data_dir
        self._dir: Path | None = None
        self._next_scripts: list[JobScript] = []
        self._faults: list[_PendingFault] = []
        self._random_faults: tuple[Fault, ...] = ()
        self._random_rate = 0.0
        self._random = random.Random()
        self._counted = asyncio.Event()
        self._jobs: dict[str, _Job] = {}
        self._removed: set[str] = set()
        self._files: dict[str, _Stored] = {}
        self._pending_uploads: dict[str, _Stored] = {}
        self._tokens: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._closing = asyncio.Event()
        self.base_url = ""

    @property
    def files_dir(self) -> Path | None:
        """Where this run keeps uploads and result videos (deleted by close); None when stopped."""
        return self._dir

    def __repr__(self) -> str:
        # The key stays out of repr: it may be a real-looking secret in a sandbox run.
        return f"FalEmulator(base_url={self.base_url!r}, jobs={len(self._jobs)})"

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 picks a free port) and return the base URL, e.g. http://127.0.0.1:PORT."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        self._closing = asyncio.Event()
        self._dir = Path(tempfile.mkdtemp(prefix="fal-emulator-", dir=self._data_dir))
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        self._routes(app)
        # A short shutdown timeout: scripted delays must not hold close() for a minute.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{bound_port}"
        return self.base_url

    async def close(self) -> None:
        """Hand the emulator to every `on_close` hook, then stop serving, stop every job and
        delete the files it wrote."""
        for hook in list(FalEmulator.on_close):
            hook(self)
        self._closing.set()
        for job in self._jobs.values():
            if job.task is not None:
                job.task.cancel()
            self._touch(job)
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        for task in self._webhook_tasks.values():
            task.cancel()
        tasks += self._webhook_tasks.values()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    async def __aenter__(self) -> FalEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- scripting -----------------------------------------------------------------------------

    def script_next(self, *scripts: JobScript) -> None:
        """The next submits take these scripts, in order; later ones use default_script."""
        self._next_scripts.extend(scripts)

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each answers the next `times` requests of its kind, in order."""
        self._faults.extend(_PendingFault(fault, fault.times) for fault in faults)

    def clear_faults(self) -> None:
        """Forget queued faults and stop failing randomly."""
        self._faults.clear()
        self._random_faults, self._random_rate = (), 0.0

    def fail_randomly(self, rate: float, faults: Sequence[Fault], *, seed: int) -> None:
        """From now on, each request whose kind one of `faults` has fails with probability
        `rate`, by one of those faults picked at random (`times` is ignored). Queued faults
        (inject) come first. Seeded, so a failing soak run can be replayed."""
        if not 0.0 <= rate <= 1.0:
            raise ScriptError("rate must be between 0 and 1")
        self._random_faults, self._random_rate = tuple(faults), rate
        self._random = random.Random(seed)

    async def wait_for_requests(self, kind: str, count: int) -> None:
        """Wait until at least `count` requests of this kind have arrived (see counts).

        Wrap it in asyncio.timeout() to bound the wait.
        """
        while self.counts[kind] < count:
            if self._closing.is_set():
                raise RuntimeError("the emulator closed before the requests came")
            await self._counted.wait()

    def remove_endpoint(self, endpoint_id: str) -> None:
        """Submits to this endpoint answer 404 from now on, as when fal retires a model."""
        self._removed.add(endpoint_id)

    def restore_endpoint(self, endpoint_id: str) -> None:
        self._removed.discard(endpoint_id)

    def expire(self, request_id: str) -> None:
        """Forget the request's result, as fal does after its retention time: result answers 404."""
        self._job(request_id).expired = True

    def reset(self) -> None:
        """Clear counts, submissions, faults, scripts, removed endpoints; jobs keep running."""
        self.counts.clear()
        self.faulted.clear()
        self.submissions.clear()
        self.clear_faults()
        self._next_scripts.clear()
        self._removed.clear()
        self.default_script = JobScript()
        self.webhook_deliveries.clear()

    def status_of(self, request_id: str) -> Stage:
        return self._job(request_id).stage

    async def advance(self, request_id: str) -> Stage:
        """Move the request to its next stage now (release a hold, skip a wait); return it."""
        job = self._job(request_id)
        if job.stage == "COMPLETED":
            return job.stage
        before = job.stage
        job.release_stage = before
        job.wake.set()
        while job.stage == before and not self._closing.is_set():
            await job.changed.wait()
        return job.stage

    async def wait_for_status(self, request_id: str, status: Stage) -> None:
        """Wait until the request has reached `status` (or a later stage), without polling.

        Wrap it in asyncio.timeout() to bound the wait.
        """
        if status not in STAGES:
            raise ValueError(f"status must be one of {', '.join(STAGES)}")
        job = self._job(request_id)
        target = STAGES.index(status)

        while STAGES.index(job.stage) < target:
            if self._closing.is_set():
                raise RuntimeError("the emulator closed before the request got there")
            await job.changed.wait()

    def _job(self, request_id: str) -> _Job:
        try:
            return self._jobs[request_id]
        except KeyError:
            raise UnknownRequest(request_id) from None

    # --- routing -----------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        r = app.router
        if self.control:
            r.add_get("/_emulator/counts", self._control_counts)
            r.add_get("/_emulator/submissions", self._control_submissions)
            r.add_post("/_emulator/script", self._control_script)
            r.add_post("/_emulator/faults", self._control_faults)
            r.add_post("/_emulator/advance/{id}", self._control_advance)
            r.add_post("/_emulator/expire/{id}", self._control_expire)
            r.add_post("/_emulator/endpoints", self._control_endpoints)
            r.add_post("/_emulator/reset", self._control_reset)
        r.add_post("/storage/auth/token", self._token)
        r.add_post("/storage/upload/initiate", self._initiate_upload)
        r.add_put("/storage/upload/{id}", self._legacy_upload)
        r.add_get("/storage/files/{id}/{name}", self._stored_file)
        r.add_post("/cdn/files/upload", self._cdn_upload)
        r.add_get("/cdn/files/{id}/{name}", self._stored_file)
        r.add_get("/files/{name}", self._result_file)
        r.add_get("/.well-known/jwks.json", self._jwks)
        r.add_get("/{owner}/{app}/requests/{id}/status/stream", self._stream)
        r.add_get("/{owner}/{app}/requests/{id}/status", self._status)
        r.add_put("/{owner}/{app}/requests/{id}/cancel", self._cancel)
        r.add_get("/{owner}/{app}/requests/{id}", self._result)
        r.add_route("*", "/{endpoint:.+}", self._submit_or_404)

    # --- intake: counting, faults, auth ------------------------------------------------------

    def _take_fault(self, kind: str) -> Fault | None:
        # Every request kind that can fail passes here right after being counted.
        counted, self._counted = self._counted, asyncio.Event()
        counted.set()
        for pending in self._faults:
            if pending.fault.kind == kind:
                pending.remaining -= 1
                if pending.remaining <= 0:
                    self._faults.remove(pending)
                self.faulted[kind] += 1
                return pending.fault
        candidates = [fault for fault in self._random_faults if fault.kind == kind]
        if candidates and self._random.random() < self._random_rate:
            self.faulted[kind] += 1
            return self._random.choice(candidates)
        return None

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)

    async def _apply_fault(
        self, request: web.Request, fault: Fault, request_id: str | None = None
    ) -> web.StreamResponse | None:
        """Delay, drop or answer as the fault says; None means carry on with the real answer."""
        await self._sleep(fault.delay)
        if fault.reset:
            _drop(request)
            return web.Response(status=500)
        status = fault.answer_status
        if status is None:
            return None
        headers: dict[str, str] = {}
        body: Any = fault.body
        if body is None:
            body = {"detail": _reason(status)}
            if fault.error_type:
                body["error_type"] = fault.error_type
        if fault.error_type:
            headers["X-Fal-Error-Type"] = fault.error_type
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.request_id_header:
            headers["x-fal-request-id"] = request_id or str(uuid.uuid4())
        if fault.timeout_type_user:
            headers["X-Fal-Request-Timeout-Type"] = "user"
        if isinstance(body, str | bytes):
            return web.Response(status=status, body=body, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        if self._key is None:
            scheme, _, value = given.partition(" ")
            return scheme == "Key" and bool(value.strip())
        return hmac.compare_digest(given.encode(), f"Key {self._key}".encode())

    @staticmethod
    def _unauthorized(request: web.Request) -> web.Response:
        if "Authorization" not in request.headers:
            detail = "Missing Authorization header: send 'Authorization: Key <FAL_KEY>'"
        else:
            detail = "Invalid API key"
        return web.json_response({"detail": detail}, status=401)

    async def _intake(
        self, request: web.Request, kind: str, *, auth: bool = True
    ) -> web.StreamResponse | None:
        """Count the request, apply a pending fault, check the key; a response is the answer."""
        self.counts[kind] += 1
        fault = self._take_fault(kind)
        if fault is not None:
            answer = await self._apply_fault(request, fault)
            if answer is not None:
                return answer
        if auth and not self._authorized(request):
            return self._unauthorized(request)
        return None

    # --- queue: submit -----------------------------------------------------------------------

    async def _submit_or_404(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return _not_found(f"No route for {request.method} {request.path}")
        return await self._submit(request, request.match_info["endpoint"])

    async def _submit(self, request: web.Request, endpoint_id: str) -> web.StreamResponse:
        self.counts["submit"] += 1
        fault = self._take_fault("submit")
        if fault is not None and not fault.after_accept:
            answer = await self._apply_fault(request, fault)
            if answer is not None:
                return answer
        if not self._authorized(request):
            return self._unauthorized(request)
        if endpoint_id not in ENDPOINTS or endpoint_id in self._removed:
            return _not_found(f"Application '{endpoint_id}' not found")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _invalid(
                [{"loc": ["body"], "msg": "Input should be valid JSON", "type": "json_invalid"}]
            )
        try:
            job_input = validate(endpoint_id, body)
        except InputInvalid as exc:
            return _invalid(exc.detail)

        job = self._create_job(request, endpoint_id, body, job_input)
        if fault is not None:
            answer = await self._apply_fault(request, fault, job.request_id)
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
    ) -> _Job:
        script = self._next_scripts.pop(0) if self._next_scripts else self.default_script
        request_id = str(uuid.uuid4())
        owner_app = "/".join(endpoint_id.split("/")[:2])
        job = _Job(
            request_id=request_id,
            endpoint_id=endpoint_id,
            owner_app=owner_app,
            base_url=self._base(request),
            job_input=job_input,
            script=script,
            queue_position=script.queue_position,
            webhook_url=request.query.get("fal_webhook"),
        )
        self._jobs[request_id] = job
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        self.submissions.append(
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
        job.task = asyncio.create_task(self._run(job), name=f"fal-emulator-{request_id}")
        return job

    def _urls(self, job: _Job) -> dict[str, str]:
        base_url = job.script.handle_base_url or job.base_url
        base = f"{base_url}/{job.owner_app}/requests/{job.request_id}"
        return {
            "status_url": f"{base}/status",
            "response_url": base,
            "cancel_url": f"{base}/cancel",
        }

    def _base(self, request: web.Request) -> str:
        """The base URL as the caller reached us, for the URLs we hand out.

        In Docker the bot reaches the emulator by its service name, not the address it binds.
        """
        host = request.headers.get("Host")
        return f"{request.scheme}://{host}" if host else self.base_url

    def _find(self, request: web.Request) -> _Job | None:
        info = request.match_info
        job = self._jobs.get(info["id"])
        if job is None or job.owner_app != f"{info['owner']}/{info['app']}":
            return None
        return job

    # --- queue: a job's life -----------------------------------------------------------------

    def _touch(self, job: _Job) -> None:
        job.version += 1
        changed, job.changed = job.changed, asyncio.Event()
        changed.set()

    def _set_stage(self, job: _Job, stage: Stage) -> None:
        job.stage = stage
        if job.release_stage != stage:
            job.release_stage = None
        self._touch(job)

    def _log(self, job: _Job, message: str, level: str = "INFO") -> None:
        job.logs.append(
            {
                "message": message,
                "level": level,
                "source": "user",
                "timestamp": datetime.now(UTC).isoformat(),
            }
        )
        self._touch(job)

    async def _pause(self, job: _Job, seconds: float | None) -> bool:
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

    async def _wait_for_slot(self, job: _Job, *, force: bool) -> None:
        """Stay IN_QUEUE until the account's concurrency allows one more IN_PROGRESS request.

        advance() lets a request through at once, even over the limit, so holds stay scriptable.
        """
        if self.concurrency is None:
            return
        if force or (self._running < self.concurrency and not self._waiting):
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

    def _release_slot(self, job: _Job) -> None:
        if not job.holds_slot:
            return
        job.holds_slot = False
        self._running -= 1
        while self._waiting and self.concurrency is not None and self._running < self.concurrency:
            waiter = self._waiting.popleft()
            waiter.holds_slot = True
            self._running += 1
            waiter.wake.set()
        self._renumber()

    def _renumber(self) -> None:
        for position, waiter in enumerate(self._waiting):
            if waiter.queue_position != position:
                waiter.queue_position = position
                self._touch(waiter)

    async def _run(self, job: _Job) -> None:
        script = job.script
        work: asyncio.Task[None] | None = None
        try:
            released = False
            steps = script.queue_position + 1
            for position in range(script.queue_position, -1, -1):
                if job.queue_position != position:
                    job.queue_position = position
                    self._touch(job)
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
            self._set_stage(job, "IN_PROGRESS")
            self._log(job, f"Pika preview model started for {job.endpoint_id}")
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

    def _finish_cancelled(self, job: _Job) -> None:
        job.error, job.error_type = "Request was cancelled", "request_cancelled"
        job.result_status = 400
        job.result_body = {"detail": job.error, "error_type": job.error_type}
        job.result_headers = {"X-Fal-Error-Type": job.error_type}
        self._complete(job)

    def _finish(self, job: _Job) -> None:
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
            self._log(job, job.error, "ERROR")
        self._complete(job)

    def _fail_model(self, job: _Job, loc: list[Any], message: str, kind: str) -> None:
        job.error, job.error_type = message, kind
        job.result_status = 422
        job.result_body = {"detail": [{"loc": loc, "msg": message, "type": kind}]}
        job.result_headers = {"X-Fal-Retryable": "false"}
        self._log(job, message, "ERROR")

    def _complete(self, job: _Job) -> None:
        job.completed_at = time.monotonic()
        self._set_stage(job, "COMPLETED")
        if job.webhook_url is not None and job.script.webhook_copies > 0:
            self._webhook_tasks[job.request_id] = asyncio.create_task(
                self._send_webhooks(job, job.webhook_url),
                name=f"fal-emulator-webhook-{job.request_id}",
            )

    async def _produce(self, job: _Job) -> None:
        """Fetch and decode the inputs, render the preview, and set the job's result."""
        job_input = job.job_input
        inputs = RenderInputs(job=job_input)
        try:
            if job_input.video_url is not None:
                self._log(job, "Downloading the input video")
                data = await self._load(job, job_input.video_url, "video_url")
                inputs.video_frames = await asyncio.to_thread(decode_video, data, "video_url")
            for index, url in enumerate(job_input.image_urls):
                what = _image_field(job_input, index)
                self._log(job, f"Downloading {what}")
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
        self._log(job, "Rendering the preview video")
        assert self._dir is not None
        file_id = uuid.uuid4().hex
        file_name = f"{file_id}.mp4"
        path = self._dir / "results" / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        size = await asyncio.to_thread(
            render_preview, inputs, self.preview, path, output_size=job.script.output_size
        )
        self._files[file_name] = _Stored(path, "video/mp4", file_name)
        job.result_status = 200
        job.result_body = {
            "video": {
                "url": f"{job.script.result_base_url or job.base_url}/files/{file_name}",
                "content_type": "video/mp4",
                "file_name": file_name,
                "file_size": size,
            }
        }
        self._log(job, "Preview ready")

    async def _load(self, job: _Job, url: str, what: str) -> bytes:
        """The bytes of a file input: a data URI, a file on this emulator, or a loopback URL."""
        if url.startswith("data:"):
            return _decode_data_uri(url, what)
        parts = urlsplit(url)
        if url.startswith((self.base_url + "/", job.base_url + "/")):
            stored = self._stored_for_path(parts.path)
            if stored is None:
                raise InputFetchFailed(f"{what} points at a file this emulator does not have")
            return await asyncio.to_thread(stored.path.read_bytes)
        if parts.hostname not in LOOPBACK_HOSTS:
            raise InputFetchFailed(
                f"{what} could not be downloaded: the emulator only fetches from 127.0.0.1"
            )
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            async with self._http.get(url) as response:
                if response.status != 200:
                    raise InputFetchFailed(
                        f"{what} could not be downloaded (HTTP {response.status})"
                    )
                chunks: list[bytes] = []
                total = 0
                async for chunk in response.content.iter_chunked(1 << 16):
                    total += len(chunk)
                    if total > self.max_fetch_bytes:
                        raise InputFetchFailed(
                            f"{what} is larger than {self.max_fetch_bytes} bytes"
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise InputFetchFailed(
                f"{what} could not be downloaded ({type(exc).__name__})"
            ) from None

    def _stored_for_path(self, path: str) -> _Stored | None:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if len(segments) == 2 and segments[0] == "files":
            return self._files.get(segments[1])
        if len(segments) == 4 and segments[:2] in (["cdn", "files"], ["storage", "files"]):
            return self._files.get(segments[2])
        return None

    # --- webhooks ------------------------------------------------------------------------------

    def rotate_webhook_key(self, key: Ed25519PrivateKey | None = None) -> None:
        """Sign callbacks with a new key from now on; the JWKS publishes it next to the old."""
        self._webhook_keys.insert(0, key or Ed25519PrivateKey.generate())

    def jwks(self) -> dict[str, Any]:
        """The public keys callbacks are signed with, as fal publishes them."""
        return {"keys": [_jwk(key) for key in self._webhook_keys]}

    async def webhooks_sent(self, request_id: str) -> list[WebhookDelivery]:
        """The request's callback attempts, once all of them are over (none: no fal_webhook)."""
        task = self._webhook_tasks.get(request_id)
        if task is None and self._job(request_id).webhook_url is not None:
            await self.wait_for_status(request_id, "COMPLETED")
            task = self._webhook_tasks.get(request_id)
        if task is not None:
            await asyncio.wait({task})
        return [d for d in self.webhook_deliveries if d.request_id == request_id]

    def _webhook_body(self, job: _Job) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": job.request_id,
            "gateway_request_id": job.request_id,
            "status": "OK" if job.result_status == 200 else "ERROR",
            "payload": job.result_body,
        }
        if job.result_status != 200:
            body["error"] = f"Invalid status code: {job.result_status}"
        return body

    async def _send_webhooks(self, job: _Job, url: str) -> None:
        body = json.dumps(self._webhook_body(job)).encode()
        for _ in range(job.script.webhook_copies):
            for attempt in range(1, self.webhook_attempts + 1):
                delivery = await self._post_webhook(job.request_id, url, body, attempt)
                self.webhook_deliveries.append(delivery)
                if delivery.ok or self._closing.is_set():
                    break
                await self._sleep(0.2 * attempt)

    async def _post_webhook(
        self, request_id: str, url: str, body: bytes, attempt: int
    ) -> WebhookDelivery:
        self.counts["webhook"] += 1
        timestamp = str(int(time.time()))
        digest = hashlib.sha256(body).hexdigest()
        message = "\n".join([request_id, WEBHOOK_USER_ID, timestamp, digest]).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": WEBHOOK_USER_ID,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": self._webhook_keys[0].sign(message).hex(),
        }
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            async with self._http.post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS),
            ) as response:
                await response.read()
                return WebhookDelivery(request_id, url, attempt, status=response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return WebhookDelivery(request_id, url, attempt, error=type(exc).__name__)

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        self.counts["jwks"] += 1
        return web.json_response(self.jwks())

    # --- queue: status, stream, result, cancel -----------------------------------------------

    def _status_body(self, job: _Job, with_logs: bool) -> dict[str, Any]:
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

    async def _status(self, request: web.Request) -> web.StreamResponse:
        answer = await self._intake(request, "status")
        if answer is not None:
            return answer
        job = self._find(request)
        if job is None:
            return _not_found("Request not found")
        body = self._status_body(job, _wants_logs(request))
        return web.json_response(
            body,
            status=200 if job.stage == "COMPLETED" else 202,
            headers={"x-fal-request-id": job.request_id},
        )

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        answer = await self._intake(request, "stream")
        if answer is not None:
            return answer
        job = self._find(request)
        if job is None:
            return _not_found("Request not found")
        with_logs = _wants_logs(request)
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
            while not self._closing.is_set():
                if job.version != seen:
                    seen = job.version
                    if limit is not None and sent >= limit:
                        _drop(request)
                        return response
                    event = json.dumps(self._status_body(job, with_logs))
                    await response.write(f"data: {event}\n\n".encode())
                    sent += 1
                    if job.stage == "COMPLETED":
                        break
                    continue
                changed = job.changed
                try:
                    await asyncio.wait_for(changed.wait(), self.keepalive_seconds)
                except TimeoutError:
                    if limit is not None and sent >= limit:
                        # A held job may not change for a long time: break at the keep-alive.
                        _drop(request)
                        return response
                    await response.write(b": keep-alive\n\n")
            await response.write_eof()
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass  # the client went away; nothing to tell it
        return response

    async def _result(self, request: web.Request) -> web.StreamResponse:
        answer = await self._intake(request, "result")
        if answer is not None:
            return answer
        job = self._find(request)
        if job is None or job.expired:
            return _not_found("Request not found; its result may have expired")
        headers = {"x-fal-request-id": job.request_id}
        if job.stage != "COMPLETED":
            where = "in queue" if job.stage == "IN_QUEUE" else "in progress"
            return web.json_response(
                {"detail": f"Request is still {where}"}, status=400, headers=headers
            )
        return web.json_response(
            job.result_body, status=job.result_status, headers={**headers, **job.result_headers}
        )

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        answer = await self._intake(request, "cancel")
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

    # --- storage and CDN -----------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.StreamResponse:
        answer = await self._intake(request, "token")
        if answer is not None:
            return answer
        token = uuid.uuid4().hex
        self._tokens[token] = time.time() + CDN_TOKEN_SECONDS
        expires = datetime.now(UTC) + timedelta(seconds=CDN_TOKEN_SECONDS)
        return web.json_response(
            {
                "token": token,
                "token_type": "Bearer",
                "base_url": f"{self._base(request)}/cdn",
                "expires_at": expires.isoformat(),
            }
        )

    def _bearer_ok(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self._tokens.get(token)
        return scheme.lower() == "bearer" and expiry is not None and expiry > time.time()

    async def _cdn_upload(self, request: web.Request) -> web.StreamResponse:
        answer = await self._intake(request, "upload", auth=False)
        if answer is not None:
            return answer
        if not self._bearer_ok(request):
            return web.json_response(
                {"detail": "Missing or expired storage token: get one from /storage/auth/token"},
                status=401,
            )
        data = await request.read()
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        name = request.headers.get("X-Fal-File-Name") or "upload" + _extension(content_type)
        stored = await self._store(data, content_type, name)
        return web.json_response(
            {
                "access_url": f"{self._base(request)}/cdn/files/{stored}",
                "content_type": content_type,
                "file_name": name,
                "file_size": len(data),
            }
        )

    async def _store(self, data: bytes, content_type: str, name: str) -> str:
        """Keep uploaded bytes on disk; return '{id}/{quoted name}' for the file URL."""
        assert self._dir is not None
        file_id = uuid.uuid4().hex
        path = self._dir / "uploads" / file_id
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, data)
        self._files[file_id] = _Stored(path, content_type, name)
        return f"{file_id}/{quote(name, safe='')}"

    async def _initiate_upload(self, request: web.Request) -> web.StreamResponse:
        # The older two-step upload: it hands out a URL to PUT to, like a signed GCS URL.
        answer = await self._intake(request, "token")
        if answer is not None:
            return answer
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        body = body if isinstance(body, dict) else {}
        content_type = str(body.get("content_type") or "application/octet-stream")
        name = str(body.get("file_name") or "upload" + _extension(content_type))
        upload_id = uuid.uuid4().hex
        assert self._dir is not None
        path = self._dir / "uploads" / upload_id
        self._pending_uploads[upload_id] = _Stored(path, content_type, name)
        quoted = quote(name, safe="")
        base = self._base(request)
        return web.json_response(
            {
                "upload_url": f"{base}/storage/upload/{upload_id}",
                "file_url": f"{base}/storage/files/{upload_id}/{quoted}",
            }
        )

    async def _legacy_upload(self, request: web.Request) -> web.StreamResponse:
        answer = await self._intake(request, "upload", auth=False)
        if answer is not None:
            return answer
        upload_id = request.match_info["id"]
        pending = self._pending_uploads.pop(upload_id, None)
        if pending is None:
            return _not_found("Unknown upload URL")
        data = await request.read()
        pending.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(pending.path.write_bytes, data)
        content_type = request.headers.get("Content-Type", pending.content_type)
        self._files[upload_id] = _Stored(pending.path, content_type, pending.file_name)
        return web.Response(status=200)

    async def _stored_file(self, request: web.Request) -> web.StreamResponse:
        answer = await self._intake(request, "file", auth=False)
        if answer is not None:
            return answer
        stored = self._files.get(request.match_info["id"])
        if stored is None:
            return _not_found("File not found")
        return _file_response(stored)

    async def _result_file(self, request: web.Request) -> web.StreamResponse:
        answer = await self._intake(request, "file", auth=False)
        if answer is not None:
            return answer
        stored = self._files.get(request.match_info["name"])
        if stored is None:
            return _not_found("File not found")
        return _file_response(stored)

    # --- control endpoints (no auth: a local tool) ---------------------------------------------

    async def _control_counts(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(dict(self.counts))

    async def _control_submissions(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([s.to_json() for s in self.submissions])

    async def _control_script(self, request: web.Request) -> web.StreamResponse:
        async def apply(body: Any) -> Any:
            if not isinstance(body, dict):
                raise ScriptError('send {"default": {...}, "next": [{...}, ...]}')
            if "default" in body:
                self.default_script = JobScript.from_json(body["default"])
            self.script_next(*(JobScript.from_json(s) for s in body.get("next", [])))
            return {"default": asdict(self.default_script), "pending": len(self._next_scripts)}

        return await _control(request, apply)

    async def _control_faults(self, request: web.Request) -> web.StreamResponse:
        async def apply(body: Any) -> Any:
            items = body.get("faults", []) if isinstance(body, dict) and "faults" in body else body
            items = items if isinstance(items, list) else [items]
            self.inject(*(Fault.from_json(item) for item in items))
            return {"pending": [{**asdict(p.fault), "times": p.remaining} for p in self._faults]}

        return await _control(request, apply)

    async def _control_advance(self, request: web.Request) -> web.StreamResponse:
        try:
            stage = await self.advance(request.match_info["id"])
        except UnknownRequest as exc:
            return _not_found(str(exc))
        return web.json_response({"status": stage})

    async def _control_expire(self, request: web.Request) -> web.StreamResponse:
        try:
            self.expire(request.match_info["id"])
        except UnknownRequest as exc:
            return _not_found(str(exc))
        return web.json_response({"expired": True})

    async def _control_endpoints(self, request: web.Request) -> web.StreamResponse:
        async def apply(body: Any) -> Any:
            if not isinstance(body, dict):
                raise ScriptError('send {"remove": [ids], "restore": [ids]}')
            for endpoint_id in body.get("remove", []):
                self.remove_endpoint(str(endpoint_id))
            for endpoint_id in body.get("restore", []):
                self.restore_endpoint(str(endpoint_id))
            return {"removed": sorted(self._removed)}

        return await _control(request, apply)

    async def _control_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response({"reset": True})


# --- small pieces shared by the handlers ---------------------------------------------------------


def _drop(request: web.Request) -> None:
    """Close the TCP connection at once, without an answer, like a crashed proxy."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _not_found(detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=404)


def _invalid(detail: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"detail": detail}, status=422)


def _wants_logs(request: web.Request) -> bool:
    return request.query.get("logs", "0").lower() in ("1", "true", "yes")


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


def _extension(content_type: str) -> str:
    return {
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "image/webp": ".webp",
        "video/mp4": ".mp4",
        "video/quicktime": ".mov",
        "video/webm": ".webm",
    }.get(content_type.split(";")[0].strip(), ".bin")


def _jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    raw = key.public_key().public_bytes_raw()
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
        "kid": hashlib.sha256(raw).hexdigest()[:16],
        "use": "sig",
        "alg": "EdDSA",
    }


def _file_response(stored: _Stored) -> web.FileResponse:
    return web.FileResponse(stored.path, headers={"Content-Type": stored.content_type})


async def _control(
    request: web.Request, apply: Callable[[Any], Awaitable[Any]]
) -> web.StreamResponse:
    try:
        body = await request.json()
        return web.json_response(await apply(body))
    except (json.JSONDecodeError, ScriptError, TypeError, ValueError) as exc:
        return web.json_response({"detail": str(exc)}, status=400)


async def serve(
    host: str = "127.0.0.1",
    port: int = 8790,
    key: str | None = None,
    *,
    preview: PreviewSettings | None = None,
    keepalive_seconds: float = 15.0,
    control: bool = True,
    concurrency: int | None = None,
    default_script: JobScript | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run an emulator until cancelled (`python -m bot fal-emulator`); ready() gets the base URL."""
    emulator = FalEmulator(
        key,
        preview=preview,
        keepalive_seconds=keepalive_seconds,
        control=control,
        concurrency=concurrency,
    )
    if default_script is not None:
        emulator.default_script = default_script
    async with contextlib.AsyncExitStack() as stack:
        base = await emulator.start(host, port)
        stack.push_async_callback(emulator.close)
        log.info(
            "fal emulator listening on %s (control endpoints %s)", base, "on" if control else "off"
        )
        if ready is not None:
            ready(base)
        await asyncio.Event().wait()
