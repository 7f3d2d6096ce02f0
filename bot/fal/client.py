"""An async client for fal's queue and storage over httpx: submit, watch, result, cancel, upload."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from bot import __version__
from bot.fal.answers import Call, body_status, error_for, json_of
from bot.fal.errors import FalAuthError, FalPlatformError, FalSubmissionUnknown, FalUnavailable
from bot.fal.models import (
    CancelOutcome,
    Completed,
    RequestHandle,
    Status,
    VideoResult,
    parse_file,
    parse_status,
)
from bot.fal.retry import (
    REQUEST_ID_HEADER,
    RETRYABLE_STATUSES,
    retry_after_of,
    should_retry_response,
    should_retry_submit_response,
    submit_never_sent,
)
from bot.fal.sse import EventParser
from bot.retry import Attempt, Attempts, RetryPolicy

log = logging.getLogger(__name__)

USER_AGENT = f"pikabot/{__version__}"

# A storage token is replaced this long before fal says it expires, so an upload never
# starts with a token that dies mid-transfer.
TOKEN_REFRESH_MARGIN = 30.0


@dataclass(frozen=True)
class FalTimeouts:
    """Per-call timeouts in seconds; every request to fal carries one."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 10.0
    # fal sends a keep-alive comment every 15 s, so a silent stream this long is broken.
    stream_read: float = 45.0
    # Uploads carry whole videos; their write and read get more room than queue calls.
    upload: float = 120.0

    def queue(self) -> httpx.Timeout:
        """Timeout for submit, status, result, cancel and token calls."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)

    def stream(self) -> httpx.Timeout:
        """Timeout for the status stream: a long read, waiting through keep-alive gaps."""
        return httpx.Timeout(
            connect=self.connect, read=self.stream_read, write=self.write, pool=self.pool
        )

    def uploads(self) -> httpx.Timeout:
        """Timeout for uploads of file bytes to fal's storage."""
        return httpx.Timeout(
            connect=self.connect, read=self.upload, write=self.upload, pool=self.pool
        )


@dataclass(frozen=True)
class StorageToken:
    """A short-lived token for fal's CDN uploads; the token itself stays out of repr."""

    token: str = field(repr=False)
    token_type: str
    base_url: str
    expires_at: float  # epoch seconds


def data_uri(data: bytes, content_type: str) -> str:
    """Encode bytes as a base64 data URI, which fal accepts wherever it takes a file URL."""
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


class _StreamUnusable(Exception):
    """The status stream answered in a way reconnecting will not fix; poll instead."""


class _StreamBroken(Exception):
    """The status stream answered with a transient error; reconnecting may help."""


class FalClient:
    """fal's queue protocol for one key: submit jobs, follow them, fetch results, cancel, upload.

    Safe calls (status, result, cancel, uploads) retry transient failures with capped,
    jittered backoff. Submits are retried only when fal surely never saw them, because fal
    has no idempotency key and a duplicate submit is billed twice.
    """

    def __init__(
        self,
        queue_url: str,
        rest_url: str,
        key: str | SecretStr,
        *,
        http: httpx.AsyncClient | None = None,
        timeouts: FalTimeouts | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random_fraction: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key if isinstance(key, SecretStr) else SecretStr(key)
        if not self._key.get_secret_value().strip():
            raise ValueError("the fal key is empty")
        self.queue_url = queue_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self._timeouts = timeouts or FalTimeouts()
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._random = random_fraction
        self._clock = clock
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=self._timeouts.queue())
        self._token: StorageToken | None = None
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"FalClient(queue_url={self.queue_url!r}, rest_url={self.rest_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object made it; an injected one is its owner's."""
        if self._owns_http:
            await self._http.aclose()

    # -- queue -----------------------------------------------------------------------------

    async def submit(
        self,
        endpoint_id: str,
        body: Mapping[str, Any],
        *,
        start_timeout: float | None = None,
        webhook_url: str | None = None,
    ) -> RequestHandle:
        """Put one request in fal's queue and return its handle.

        Raises FalSubmissionUnknown when the body may have reached fal but no answer came
        back: the caller must not resubmit blindly.
        """
        url = f"{self.queue_url}/{endpoint_id.strip('/')}"
        if webhook_url is not None:
            url += "?" + urlencode({"fal_webhook": webhook_url})
        headers = self._auth_headers()
        if start_timeout is not None:
            if start_timeout <= 1:
                raise ValueError("start_timeout must be more than 1 second")
            headers["X-Fal-Request-Timeout"] = f"{start_timeout:g}"

        async for attempt in self._attempts():
            try:
                response = await self._http.post(
                    url, json=dict(body), headers=headers, timeout=self._timeouts.queue()
                )
            except httpx.RequestError as exc:
                if not submit_never_sent(exc):
                    log.warning(
                        "fal submit to %s: no answer after sending (%s); outcome unknown",
                        endpoint_id,
                        type(exc).__name__,
                    )
                    raise FalSubmissionUnknown(endpoint_id=endpoint_id) from exc
                if attempt.last:
                    raise FalUnavailable(
                        "fal could not be reached to start the video; nothing was sent."
                    ) from exc
                self._retrying("submit", attempt, None, exc)
                continue
            # Sent again only when the answer proves fal never took it (see retry.py).
            if attempt.last or not should_retry_submit_response(response):
                break
            self._retrying("submit", attempt, response, None)

        if response.status_code != 200:
            raise error_for(response, call="submit", endpoint_id=endpoint_id)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        request_id = data.get("request_id") or response.headers.get(REQUEST_ID_HEADER)
        if not isinstance(request_id, str) or not request_id:
            # fal accepted something but did not say what: the job may exist all the same.
            raise FalSubmissionUnknown(endpoint_id=endpoint_id)
        position = data.get("queue_position")
        answered = RequestHandle(
            request_id=request_id,
            endpoint_id=endpoint_id,
            status_url=_str_or(data.get("status_url"), ""),
            response_url=_str_or(data.get("response_url"), ""),
            cancel_url=_str_or(data.get("cancel_url"), ""),
            queue_position=position if isinstance(position, int) else None,
        )
        return self._on_fal_host(answered)

    def handle_for(self, endpoint_id: str, request_id: str) -> RequestHandle:
        """Rebuild a handle from a stored request id; fal's URLs use only the owner/app part."""
        parts = [p for p in endpoint_id.split("/") if p]
        if len(parts) < 2:
            raise ValueError(f"not a fal endpoint id: {endpoint_id!r}")
        base = f"{self.queue_url}/{parts[0]}/{parts[1]}/requests/{request_id}"
        return RequestHandle(
            request_id=request_id,
            endpoint_id=endpoint_id,
            status_url=f"{base}/status",
            response_url=base,
            cancel_url=f"{base}/cancel",
        )

    def _on_fal_host(self, handle: RequestHandle) -> RequestHandle:
        """The handle with every URL on the configured queue host; others rebuilt from the id.

        The key goes with every queue call, so a URL elsewhere (an odd or crafted submit answer,
        a proxy's upstream address) is never followed: fal's own URLs are exactly the rebuilt
        ones, and through a proxy the rebuilt ones are the way to reach fal.
        """
        urls = (handle.status_url, handle.response_url, handle.cancel_url)
        if all(self._is_queue_url(url) for url in urls):
            return handle
        rebuilt = self.handle_for(handle.endpoint_id, handle.request_id)
        if any(url and not self._is_queue_url(url) for url in urls):
            log.warning(
                "fal: URLs for request %s are not on %s; using ones rebuilt from its id",
                handle.request_id,
                self.queue_url,
            )
        return dataclasses.replace(
            handle,
            status_url=_pick(handle.status_url, rebuilt.status_url, self._is_queue_url),
            response_url=_pick(handle.response_url, rebuilt.response_url, self._is_queue_url),
            cancel_url=_pick(handle.cancel_url, rebuilt.cancel_url, self._is_queue_url),
        )

    def _is_queue_url(self, url: str) -> bool:
        return url.startswith(self.queue_url + "/")

    async def status(self, handle: RequestHandle, *, logs: bool = True) -> Status:
        """Ask once where the request is (retrying transient failures)."""
        handle = self._on_fal_host(handle)
        response = await self._send_safe(
            "GET",
            handle.status_url,
            call="status",
            request_id=handle.request_id,
            params={"logs": "1" if logs else "0"},
        )
        if response.status_code not in (200, 202):
            raise error_for(response, call="status", request_id=handle.request_id)
        return parse_status(json_of(response, handle.request_id))

    async def watch(
        self,
        handle: RequestHandle,
        *,
        poll_interval: float = 5.0,
        stream: bool = True,
        stream_reconnects: int = 2,
    ) -> AsyncIterator[Status]:
        """Yield the request's statuses until (and including) Completed.

        Follows fal's status stream; if it breaks, reconnects up to `stream_reconnects`
        times, then polls every `poll_interval` seconds (never faster). Transient failures
        while polling are waited out rather than raised, so a flaky network never loses the
        job; the caller's own deadline bounds the wait.
        """
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if stream:
            reconnects = self._retry.with_attempts(stream_reconnects + 1)
            async for _ in reconnects.attempts(sleep=self._sleep, random_fraction=self._random):
                try:
                    async with aclosing(self._stream_once(handle)) as events:
                        async for status in events:
                            yield status
                            if isinstance(status, Completed):
                                return
                    log.info("fal status stream for %s ended early", handle.request_id)
                except _StreamUnusable as exc:
                    log.info("fal status stream for %s unusable (%s)", handle.request_id, exc)
                    break
                except (httpx.RequestError, _StreamBroken) as exc:
                    log.info("fal status stream for %s broke (%r)", handle.request_id, exc)
            log.info("fal: polling %s every %.1fs", handle.request_id, poll_interval)

        first = True
        while True:
            if not first:
                await self._sleep(poll_interval)
            first = False
            try:
                status = await self.status(handle)
            except FalPlatformError as exc:
                if not exc.retryable:
                    raise
                log.warning("fal status of %s failed (%s); will poll again", handle.request_id, exc)
                continue
            yield status
            if isinstance(status, Completed):
                return

    async def _stream_once(self, handle: RequestHandle) -> AsyncGenerator[Status, None]:
        handle = self._on_fal_host(handle)
        url = httpx.URL(handle.status_url)
        url = url.copy_with(path=url.path.rstrip("/") + "/stream")
        async with self._http.stream(
            "GET",
            url,
            params={"logs": "1"},
            headers=self._auth_headers(),
            timeout=self._timeouts.stream(),
        ) as response:
            if response.status_code in (401, 403):
                raise FalAuthError(status=response.status_code, request_id=handle.request_id)
            if response.status_code != 200:
                if response.status_code in RETRYABLE_STATUSES:
                    raise _StreamBroken(f"HTTP {response.status_code}")
                raise _StreamUnusable(f"HTTP {response.status_code}")
            parser = EventParser()
            async for line in response.aiter_lines():
                data = parser.feed(line)
                if data is not None:
                    status = _parse_event(data, handle.request_id)
                    if status is not None:
                        yield status
            data = parser.flush()
            if data is not None:
                status = _parse_event(data, handle.request_id)
                if status is not None:
                    yield status

    async def result(self, handle: RequestHandle) -> VideoResult:
        """Fetch a completed request's video; a failed run raises the error its answer describes."""
        handle = self._on_fal_host(handle)
        response = await self._send_safe(
            "GET", handle.response_url, call="result", request_id=handle.request_id
        )
        if response.status_code != 200:
            raise error_for(response, call="result", request_id=handle.request_id)
        data = json_of(response, handle.request_id)
        video = parse_file(data.get("video")) if isinstance(data, dict) else None
        if video is None:
            raise FalPlatformError(
                "fal finished but sent back no video.",
                status=response.status_code,
                error_type="invalid_response",
                retryable=False,
                request_id=handle.request_id,
            )
        extra = {k: v for k, v in data.items() if k != "video"}
        return VideoResult(video=video, extra=extra)

    async def cancel(self, handle: RequestHandle) -> CancelOutcome:
        """Ask fal to cancel; a request already running may still finish (and bill)."""
        handle = self._on_fal_host(handle)
        response = await self._send_safe(
            "PUT", handle.cancel_url, call="cancel", request_id=handle.request_id
        )
        code = response.status_code
        if 200 <= code < 300:
            return CancelOutcome.REQUESTED
        if code == 404:
            return CancelOutcome.NOT_FOUND
        if code == 400 and body_status(response) == "ALREADY_COMPLETED":
            return CancelOutcome.ALREADY_COMPLETED
        raise error_for(response, call="cancel", request_id=handle.request_id)

    # -- storage ---------------------------------------------------------------------------

    async def upload(self, data: bytes, content_type: str, *, file_name: str | None = None) -> str:
        """Store bytes on fal's CDN and return their public URL."""
        for refreshed in (False, True):
            token = await self._storage_token(force=refreshed)
            headers = {
                "Authorization": f"{token.token_type} {token.token}",
                "Content-Type": content_type,
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            }
            if file_name:
                headers["X-Fal-File-Name"] = file_name
            response = await self._send_safe(
                "POST",
                f"{token.base_url.rstrip('/')}/files/upload",
                call="upload",
                headers=headers,
                content=data,
                timeouts=self._timeouts.uploads(),
            )
            # A token can be revoked before its stated expiry; one fresh token is worth a try.
            if response.status_code in (401, 403) and not refreshed:
                continue
            break
        if response.status_code not in (200, 201):
            raise error_for(response, call="upload")
        body = json_of(response, None)
        access_url = body.get("access_url") if isinstance(body, dict) else None
        if not isinstance(access_url, str):
            raise FalPlatformError(
                "fal's storage did not say where the upload went.",
                status=response.status_code,
                error_type="invalid_response",
                retryable=False,
            )
        return access_url

    async def file_input(
        self,
        data: bytes,
        content_type: str,
        *,
        max_data_uri_bytes: int,
        file_name: str | None = None,
    ) -> str:
        """A file field's value: a data URI up to `max_data_uri_bytes` raw bytes, else an upload."""
        if len(data) <= max_data_uri_bytes:
            return data_uri(data, content_type)
        return await self.upload(data, content_type, file_name=file_name)

    async def _storage_token(self, *, force: bool = False) -> StorageToken:
        async with self._token_lock:
            token = self._token
            if (
                token is not None
                and not force
                and self._clock() < token.expires_at - TOKEN_REFRESH_MARGIN
            ):
                return token
            response = await self._send_safe(
                "POST",
                f"{self.rest_url}/storage/auth/token",
                call="token",
                params={"storage_type": "fal-cdn-v3"},
                headers={**self._auth_headers(), "Content-Type": "application/json"},
                json={},
            )
            if response.status_code != 200:
                raise error_for(response, call="token")
            data = json_of(response, None)
            try:
                token = StorageToken(
                    token=str(data["token"]),
                    token_type=str(data.get("token_type") or "Bearer"),
                    base_url=str(data["base_url"]),
                    expires_at=_epoch(data.get("expires_at"), self._clock()),
                )
            except (KeyError, TypeError) as exc:
                raise FalPlatformError(
                    "fal's storage answered without an upload token.",
                    status=response.status_code,
                    error_type="invalid_response",
                    retryable=False,
                ) from exc
            self._token = token
            return token

    # -- plumbing --------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Key {self._key.get_secret_value()}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }

    async def _send_safe(
        self,
        method: str,
        url: str,
        *,
        call: Call,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
        timeouts: httpx.Timeout | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a call that is safe to repeat, retrying transient failures.

        Returns the last answer (which may still be an error status for the caller to map);
        raises FalUnavailable when fal could not be reached within the attempts.
        """
        async for attempt in self._attempts():
            try:
                response = await self._http.request(
                    method,
                    url,
                    headers=headers if headers is not None else self._auth_headers(),
                    timeout=timeouts or self._timeouts.queue(),
                    **kwargs,
                )
            except httpx.RequestError as exc:
                if attempt.last:
                    raise FalUnavailable(
                        "fal could not be reached; the request is still there and can be "
                        "checked again later.",
                        request_id=request_id,
                    ) from exc
                self._retrying(call, attempt, None, exc)
                continue
            if attempt.last or not should_retry_response(response):
                break
            self._retrying(call, attempt, response, None)
        return response

    def _attempts(self) -> Attempts:
        return self._retry.attempts(sleep=self._sleep, random_fraction=self._random)

    def _retrying(
        self,
        call: Call,
        attempt: Attempt,
        response: httpx.Response | None,
        exc: Exception | None,
    ) -> None:
        """Note why the call is tried again; the wait honours the answer's Retry-After."""
        attempt.retry_after(retry_after_of(response))
        reason = f"HTTP {response.status_code}" if response is not None else type(exc).__name__
        log.info(
            "fal %s failed (%s); retry %d/%d in %.2fs",
            call,
            reason,
            attempt.number,
            self._retry.max_attempts - 1,
            attempt.delay,
        )


def _parse_event(data: str, request_id: str) -> Status | None:
    try:
        return parse_status(json.loads(data))
    except ValueError:
        log.warning("fal status stream for %s sent unreadable data; skipped", request_id)
        return None


def _epoch(value: Any, now: float) -> float:
    """Read fal's `expires_at` (ISO 8601 or epoch seconds); a missing one means use once."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return now
        if parsed.tzinfo is None:
            # Without a zone the stamp is UTC, fal's convention, not the host's local time.
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return now


def _str_or(value: Any, fallback: str) -> str:
    return value if isinstance(value, str) and value else fallback


def _pick(url: str, rebuilt: str, allowed: Callable[[str], bool]) -> str:
    return url if allowed(url) else rebuilt
