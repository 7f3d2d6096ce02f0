"""Failures and holds a test injects into the fake Discord: fail_next, hold_next, fail_randomly."""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .errors import ApiError
from .state import FakeState


@dataclass
class _Fault:
    method: str
    pattern: str | re.Pattern[str]
    status: int
    code: int | None
    retry_after: float | None
    times: int
    via: bool
    global_: bool
    message: str | None
    after: bool = False  # handled first (Discord did the work), then answered with the error

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        if isinstance(self.pattern, re.Pattern):
            return self.pattern.fullmatch(path) is not None
        return fnmatch.fnmatchcase(path, self.pattern)

    def error(self, now: datetime) -> ApiError:
        if self.status == 429:
            retry_after = 0.0 if self.retry_after is None else self.retry_after
            headers = {"Retry-After": str(max(1, round(retry_after)))}
            if self.via:
                headers["Via"] = "1.1 google"
            if self.global_:
                headers.update({"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"})
            else:
                # A complete set, or discord.py's bucket bookkeeping goes wrong.
                headers.update(
                    {
                        "X-RateLimit-Limit": "5",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": f"{now.timestamp() + retry_after:.3f}",
                        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                        "X-RateLimit-Bucket": _bucket(self.pattern),
                        "X-RateLimit-Scope": "user",
                    }
                )
            return ApiError(
                429,
                self.code,
                self.message or "You are being rate limited.",
                headers=headers,
                extra={"retry_after": retry_after, "global": self.global_},
            )
        if self.status == 403:
            code = 50013 if self.code is None else self.code
            return ApiError(403, code, self.message or "Missing Permissions")
        code = 0 if self.code is None else self.code
        return ApiError(self.status, code, self.message or f"{self.status}: injected failure")


@dataclass(frozen=True)
class RandomFault:
    """A failure `fail_randomly` may answer a matching request with; the fields are fail_next's."""

    method: str
    path_pattern: str | re.Pattern[str]
    status: int
    code: int | None = None
    retry_after: float | None = None
    via: bool = True
    global_: bool = False
    message: str | None = None


class Hold:
    """One request the fake keeps waiting, so a test can act (e.g. kill the bot) at that moment.

    With `before`, the request waits before Discord acts on it: nothing happened yet. Without,
    it is handled (the message exists) and only the answer waits: the bot cannot know it
    happened. `release()` lets it go on; `drop()` closes the connection instead (before:
    unhandled; after: handled but unanswered), as when the bot's process died.
    """

    def __init__(
        self, method: str, pattern: str | re.Pattern[str], *, before: bool, closing: asyncio.Event
    ) -> None:
        self.method = method
        self.pattern = pattern
        self.before = before
        self.path: str | None = None
        self.dropped = False
        self._reached = asyncio.Event()
        self._go = asyncio.Event()
        self._closing = closing

    def __repr__(self) -> str:
        when = "before" if self.before else "after"
        return f"<Hold {self.method} {self.pattern} {when} reached={self._reached.is_set()}>"

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        if isinstance(self.pattern, re.Pattern):
            return self.pattern.fullmatch(path) is not None
        return fnmatch.fnmatchcase(path, self.pattern)

    @property
    def reached(self) -> bool:
        """Whether a matching request arrived and is being held."""
        return self._reached.is_set()

    async def wait(self, timeout: float = 10) -> str:  # noqa: ASYNC109
        """Wait until a matching request is held; the path it was sent to."""
        try:
            await asyncio.wait_for(self._reached.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no request matched {self!r} within {timeout}s") from None
        assert self.path is not None
        return self.path

    def release(self) -> None:
        """Let the held request go on as if nothing happened."""
        self._go.set()

    def drop(self) -> None:
        """Close the held request's connection without (further) handling or an answer."""
        self.dropped = True
        self._go.set()

    async def _hold(self, path: str) -> bool:
        """Hold a request here; True if it should go on, False if it was dropped."""
        self.path = path
        self._reached.set()
        go = asyncio.ensure_future(self._go.wait())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({go, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            go.cancel()
            closing.cancel()
        if not self._go.is_set():
            self.dropped = True
        return not self.dropped


class FaultControls(FakeState):
    """The failures and holds a test asks for; the HTTP side asks here for each request."""

    def fail_next(
        self,
        method: str,
        path_pattern: str | re.Pattern[str],
        status: int,
        *,
        code: int | None = None,
        retry_after: float | None = None,
        times: int = 1,
        via: bool = True,
        global_: bool = False,
        message: str | None = None,
        after: bool = False,
    ) -> None:
        """Answer the next `times` matching requests with an error instead of handling them.

        With `after`, each is handled first and only its answer is the error: Discord created
        the message, then answered e.g. 502, so a client that retries blindly posts it twice.

        `path_pattern` is a glob (or compiled regex) over the API path without /api/v10, e.g.
        "/channels/*/messages", or a CDN path like "/ephemeral-attachments/*". A 429 carries JSON
        {message, retry_after, global}, a `Via` header unless via=False, and complete rate-limit
        headers (or only the global ones); a 403 defaults to code 50013.
        """
        self._faults.append(
            _Fault(
                method.upper(),
                path_pattern,
                status,
                code,
                retry_after,
                times,
                via,
                global_,
                message,
                after,
            )
        )

    def hold_next(
        self, method: str, path_pattern: str | re.Pattern[str], *, before: bool = True
    ) -> Hold:
        """Hold the next matching API request (glob or regex over the path without /api/v10).

        `before=True` holds it before it is handled; `before=False` handles it and holds the
        answer. Await `hold.wait()`, act, then `hold.release()` or `hold.drop()`; close()
        drops whatever is still held.
        """
        hold = Hold(method.upper(), path_pattern, before=before, closing=self._closing)
        self._holds.append(hold)
        return hold

    def hold_ready(self) -> asyncio.Event:
        """Keep the next bots that identify waiting for READY (and their guilds) until the
        returned event is set: a bot that is up, with its REST working, but knows no guild."""
        self._ready_gate = asyncio.Event()
        return self._ready_gate

    async def _ready_allowed(self) -> None:
        gate = self._ready_gate
        if gate is None or gate.is_set():
            return
        opened = asyncio.ensure_future(gate.wait())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({opened, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
            closing.cancel()

    def _take_hold(self, method: str, path: str) -> Hold | None:
        for hold in self._holds:
            if hold.matches(method, path):
                self._holds.remove(hold)
                return hold
        return None

    def fail_randomly(self, rate: float, faults: Sequence[RandomFault], *, seed: int) -> None:
        """From now on, each request that one of `faults` matches fails with probability `rate`,
        by one of the matching faults picked at random; fail_next's faults come first. Seeded,
        so a failing soak run can be replayed; rate 0 stops it."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        self._random_rate = rate
        self._random = random.Random(seed)
        self._random_faults = tuple(
            _Fault(
                f.method.upper(),
                f.path_pattern,
                f.status,
                f.code,
                f.retry_after,
                1,
                f.via,
                f.global_,
                f.message,
            )
            for f in faults
        )

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        candidates = [fault for fault in self._random_faults if fault.matches(method, path)]
        if candidates and self._random.random() < self._random_rate:
            return self._random.choice(candidates)
        return None


def _bucket(pattern: str | re.Pattern[str]) -> str:
    return "fake" + hashlib.sha256(str(pattern).encode()).hexdigest()[:12]
