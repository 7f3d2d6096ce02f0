"""Download a file over HTTP(S) to disk or memory, only from expected hosts and only up to a size
bound."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import TypeVar

import httpx

# Per-operation timeouts: a stalled peer fails in seconds, a slow but moving one may go on.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)
MAX_REDIRECTS = 5
_WRITE_CHUNK = 1024 * 1024

T = TypeVar("T")
# Takes a 200 response and the host it came from; returns what the body became.
_Sink = Callable[[httpx.Response, str], Awaitable[T]]


class DownloadError(Exception):
    """A download did not produce a file; `.message` says why in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DownloadRefused(DownloadError):
    """The download breaks a rule: a host not allowed, plain http, or a file too large."""


class DownloadTooLarge(DownloadRefused):
    """The file is larger than the bound (declared, or counted while streaming)."""

    def __init__(self, message: str, *, max_bytes: int) -> None:
        super().__init__(message)
        self.max_bytes = max_bytes


class DownloadFailed(DownloadError):
    """The download was allowed but did not work: network error, bad status, too slow."""


def host_allowed(host: str, allowed_hosts: Collection[str]) -> bool:
    """Whether `host` matches a rule: "cdn.example" matches only itself; ".example" matches
    any subdomain of example ("a.example", "b.a.example") but not "example" itself, nor
    "badexample". Case and a trailing dot are ignored. Ports are not part of the rule."""
    host = host.lower().rstrip(".")
    if not host:
        return False
    for rule in allowed_hosts:
        rule = rule.lower().rstrip(".")
        if rule.startswith("."):
            if len(rule) > 1 and host.endswith(rule):
                return True
        elif host == rule:
            return True
    return False


async def download(
    client: httpx.AsyncClient,
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    allowed_hosts: Collection[str],
    require_https: bool = True,
    http_timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    deadline_seconds: float = 300.0,
) -> int:
    """Stream `url` into `dest` and return the number of bytes written.

    The body goes to a temporary file beside `dest` that is renamed into place only when
    complete, so `dest` is never a partial file. Redirects are followed by hand (at most
    five), each hop checked against the same rules as the first. The size bound counts
    decoded bytes, so a compressed response cannot inflate past it. Raises DownloadRefused
    or DownloadFailed; their messages name the host, never the URL (signed links carry
    credentials in their query).
    """

    async def to_file(response: httpx.Response, host: str) -> int:
        return await _save(response, dest, max_bytes=max_bytes, host=host)

    return await _within(
        deadline_seconds,
        _download(
            client,
            url,
            to_file,
            max_bytes=max_bytes,
            allowed_hosts=allowed_hosts,
            require_https=require_https,
            http_timeout=http_timeout,
        ),
    )


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    allowed_hosts: Collection[str],
    require_https: bool = True,
    http_timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    deadline_seconds: float = 120.0,
) -> bytes:
    """The body of `url` in memory, under the same rules as `download`: hosts checked at every
    hop, the size bound counted while streaming (never more than `max_bytes` is held)."""

    async def to_memory(response: httpx.Response, host: str) -> bytes:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            if len(body) + len(chunk) > max_bytes:
                raise DownloadTooLarge(
                    f"the file on {host} is larger than {max_bytes:,} bytes, the most allowed.",
                    max_bytes=max_bytes,
                )
            body += chunk
        return bytes(body)

    return await _within(
        deadline_seconds,
        _download(
            client,
            url,
            to_memory,
            max_bytes=max_bytes,
            allowed_hosts=allowed_hosts,
            require_https=require_https,
            http_timeout=http_timeout,
        ),
    )


async def _within(deadline_seconds: float, work: Awaitable[T]) -> T:
    try:
        async with asyncio.timeout(deadline_seconds):
            return await work
    except TimeoutError:
        raise DownloadFailed(
            f"the download took longer than {deadline_seconds:g} seconds and was stopped."
        ) from None


async def _download(
    client: httpx.AsyncClient,
    url: str,
    sink: _Sink[T],
    *,
    max_bytes: int,
    allowed_hosts: Collection[str],
    require_https: bool,
    http_timeout: httpx.Timeout,
) -> T:
    current = _checked_url(url, allowed_hosts, require_https)
    for _ in range(MAX_REDIRECTS + 1):
        try:
            async with client.stream(
                "GET", current, follow_redirects=False, timeout=http_timeout
            ) as response:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    current = _checked_url(
                        str(current.join(location)), allowed_hosts, require_https, redirect=True
                    )
                    continue
                if response.status_code != 200:
                    raise DownloadFailed(
                        f"{current.host} answered HTTP {response.status_code} instead of the file."
                    )
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise DownloadTooLarge(
                        f"the file on {current.host} is {int(declared):,} bytes; "
                        f"at most {max_bytes:,} bytes are allowed.",
                        max_bytes=max_bytes,
                    )
                return await sink(response, current.host)
        except httpx.TimeoutException:
            raise DownloadFailed(f"{current.host} stopped answering; try again later.") from None
        except httpx.HTTPError as exc:
            raise DownloadFailed(
                f"the download from {current.host} failed ({type(exc).__name__})."
            ) from None
    raise DownloadRefused(f"the download was redirected more than {MAX_REDIRECTS} times.")


async def _save(response: httpx.Response, dest: Path, *, max_bytes: int, host: str) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
    written = 0
    buffer = bytearray()
    fh = await asyncio.to_thread(temp.open, "wb")
    try:
        async for chunk in response.aiter_bytes():
            written += len(chunk)
            if written > max_bytes:
                raise DownloadTooLarge(
                    f"the file on {host} is larger than {max_bytes:,} bytes, the most allowed.",
                    max_bytes=max_bytes,
                )
            buffer += chunk
            if len(buffer) >= _WRITE_CHUNK:
                await asyncio.to_thread(fh.write, bytes(buffer))
                buffer.clear()
        if buffer:
            await asyncio.to_thread(fh.write, bytes(buffer))
        await asyncio.to_thread(fh.close)
        await asyncio.to_thread(os.replace, temp, dest)
    except BaseException:
        fh.close()
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return written


def _checked_url(
    url: str, allowed_hosts: Collection[str], require_https: bool, *, redirect: bool = False
) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise DownloadRefused("the download address is not a valid URL.") from None
    if parsed.scheme not in ("https", "http"):
        raise DownloadRefused(f"downloads must use https, not {parsed.scheme or 'no scheme'}.")
    if parsed.scheme == "http" and require_https:
        raise DownloadRefused(f"downloads must use https; {parsed.host} was plain http.")
    if not host_allowed(parsed.host, allowed_hosts):
        host = parsed.host or "an unnamed host"
        if redirect:
            raise DownloadRefused(
                f"the download was redirected to {host}, which is not a host the bot trusts."
            )
        raise DownloadRefused(
            f"the bot does not download from {host}; only from the hosts it expects."
        )
    return parsed
