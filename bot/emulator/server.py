"""The local fal emulator: an aiohttp server speaking fal's queue, storage and CDN protocols.

One server answers what fal splits over queue.fal.run, rest.fal.ai and its CDN: point both the
queue URL and the REST URL at `base_url`. Jobs are scripted (JobScript) and requests can be made
to fail (Fault); every request is counted by kind, so tests and benchmarks can assert on what the
bot sent. The routes live by family beside it (queue.py, storage.py, webhooks.py, control.py),
a job's life in life.py and what is kept per request in jobs.py. Choices where fal's behaviour
is not documented:
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
import contextlib
import hmac
import logging
import random
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.emulator.answers import drop, reason
from bot.emulator.control import ControlRoutes
from bot.emulator.jobs import (
    STAGES,
    Job,
    PendingFault,
    Stage,
    Submission,
    UnknownRequest,
    WebhookDelivery,
)
from bot.emulator.life import JobLife
from bot.emulator.queue import QueueRoutes
from bot.emulator.render import PreviewSettings
from bot.emulator.scripts import Fault, JobScript, ScriptError
from bot.emulator.storage import StorageRoutes
from bot.emulator.webhooks import Webhooks, jwk

log = logging.getLogger(__name__)

# Bodies carry data URIs and uploads carry videos: far above aiohttp's 1 MiB default.
MAX_BODY_BYTES = 128 * 1024 * 1024
MAX_FETCH_BYTES = 64 * 1024 * 1024


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
        self.default_script = JobScript()
        self.counts: Counter[str] = Counter()
        self.faulted: Counter[str] = Counter()  # requests answered by a fault, by kind
        self.submissions: list[Submission] = []
        self._data_dir = data_dir
        self._dir: Path | None = None
        self._next_scripts: list[JobScript] = []
        self._faults: list[PendingFault] = []
        self._random_faults: tuple[Fault, ...] = ()
        self._random_rate = 0.0
        self._random = random.Random()
        self._counted = asyncio.Event()
        self._jobs: dict[str, Job] = {}
        self._removed: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._closing = asyncio.Event()
        self.base_url = ""
        self._life = JobLife(self)
        self._queue = QueueRoutes(self)
        self._storage = StorageRoutes(self)
        self._webhooks = Webhooks(self)
        self._control = ControlRoutes(self)

    @property
    def files_dir(self) -> Path | None:
        """Where this run keeps uploads and result videos (deleted by close); None when stopped."""
        return self._dir

    def __repr__(self) -> str:
        # The key stays out of repr: it may be a real-looking secret in a sandbox run.
        return f"FalEmulator(base_url={self.base_url!r}, jobs={len(self._jobs)})"

    # --- lifecycle --------------------------------------------------------------------------------

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
            job.touch()
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

    # --- scripting --------------------------------------------------------------------------------

    def script_next(self, *scripts: JobScript) -> None:
        """The next submits take these scripts, in order; later ones use default_script."""
        self._next_scripts.extend(scripts)

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each answers the next `times` requests of its kind, in order."""
        self._faults.extend(PendingFault(fault, fault.times) for fault in faults)

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

    def _job(self, request_id: str) -> Job:
        try:
            return self._jobs[request_id]
        except KeyError:
            raise UnknownRequest(request_id) from None

    # --- webhooks ---------------------------------------------------------------------------------

    def rotate_webhook_key(self, key: Ed25519PrivateKey | None = None) -> None:
        """Sign callbacks with a new key from now on; the JWKS publishes it next to the old."""
        self._webhook_keys.insert(0, key or Ed25519PrivateKey.generate())

    def jwks(self) -> dict[str, Any]:
        """The public keys callbacks are signed with, as fal publishes them."""
        return {"keys": [jwk(key) for key in self._webhook_keys]}

    async def webhooks_sent(self, request_id: str) -> list[WebhookDelivery]:
        """The request's callback attempts, once all of them are over (none: no fal_webhook)."""
        task = self._webhook_tasks.get(request_id)
        if task is None and self._job(request_id).webhook_url is not None:
            await self.wait_for_status(request_id, "COMPLETED")
            task = self._webhook_tasks.get(request_id)
        if task is not None:
            await asyncio.wait({task})
        return [d for d in self.webhook_deliveries if d.request_id == request_id]

    # --- routing ----------------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        r = app.router
        if self.control:
            r.add_get("/_emulator/counts", self._control.counts)
            r.add_get("/_emulator/submissions", self._control.submissions)
            r.add_post("/_emulator/script", self._control.script)
            r.add_post("/_emulator/faults", self._control.faults)
            r.add_post("/_emulator/advance/{id}", self._control.advance)
            r.add_post("/_emulator/expire/{id}", self._control.expire)
            r.add_post("/_emulator/endpoints", self._control.endpoints)
            r.add_post("/_emulator/reset", self._control.reset)
        r.add_post("/storage/auth/token", self._storage.token)
        r.add_post("/storage/upload/initiate", self._storage.initiate_upload)
        r.add_put("/storage/upload/{id}", self._storage.legacy_upload)
        r.add_get("/storage/files/{id}/{name}", self._storage.stored_file)
        r.add_post("/cdn/files/upload", self._storage.cdn_upload)
        r.add_get("/cdn/files/{id}/{name}", self._storage.stored_file)
        r.add_get("/files/{name}", self._storage.result_file)
        r.add_get("/.well-known/jwks.json", self._webhooks.jwks)
        r.add_get("/{owner}/{app}/requests/{id}/status/stream", self._queue.stream)
        r.add_get("/{owner}/{app}/requests/{id}/status", self._queue.status)
        r.add_put("/{owner}/{app}/requests/{id}/cancel", self._queue.cancel)
        r.add_get("/{owner}/{app}/requests/{id}", self._queue.result)
        r.add_route("*", "/{endpoint:.+}", self._queue.submit_or_404)

    # --- intake: counting, faults, auth (every route family) --------------------------------------

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
            drop(request)
            return web.Response(status=500)
        status = fault.answer_status
        if status is None:
            return None
        headers: dict[str, str] = {}
        body: Any = fault.body
        if body is None:
            body = {"detail": reason(status)}
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

    def _base(self, request: web.Request) -> str:
        """The base URL as the caller reached us, for the URLs we hand out.

        In Docker the bot reaches the emulator by its service name, not the address it binds.
        """
        host = request.headers.get("Host")
        return f"{request.scheme}://{host}" if host else self.base_url

    def _client(self) -> aiohttp.ClientSession:
        """The one HTTP client for input downloads and callbacks (made on first use)."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._http


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
