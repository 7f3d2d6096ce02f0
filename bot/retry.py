"""One retry policy for every call the bot repeats: fal's calls, stream reconnects, downloads and
Discord posts. The policy says how often and how long to wait; what is worth another try, and
what must never be sent twice, each caller decides where it knows."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Self

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff, capped, with full jitter unless turned off.

    Retry-After wins when the caller has one, up to `max_retry_after`.
    """

    max_attempts: int = 5  # tries in all, the first included
    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 20.0
    jitter: bool = True
    # A server asking for a longer wait than this is obeyed only up to this cap, so one
    # odd header cannot park a job for an hour.
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")
        if self.factor < 1:
            raise ValueError("factor must be at least 1")

    def with_attempts(self, max_attempts: int) -> Self:
        """The same waits, with another number of tries."""
        return replace(self, max_attempts=max_attempts)

    def backoff(self, retry_number: int, random_fraction: float = 1.0) -> float:
        """Delay before retry `retry_number` (1-based): capped exponential, jittered when on."""
        # The exponent is bounded so a long run of failures cannot overflow a float.
        growth = self.factor ** min(max(retry_number - 1, 0), 64)
        ceiling = min(self.max_delay, self.base_delay * growth)
        if not self.jitter:
            return ceiling
        return max(0.0, min(1.0, random_fraction)) * ceiling

    def delay(
        self, retry_number: int, random_fraction: float = 1.0, retry_after: float | None = None
    ) -> float:
        """The wait before retry `retry_number`: the caller's Retry-After (capped) if it has one."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_retry_after)
        return self.backoff(retry_number, random_fraction)

    def attempts(
        self,
        *,
        sleep: Sleep = asyncio.sleep,
        random_fraction: Callable[[], float] = random.random,
    ) -> Attempts:
        """The tries of one operation: `async for attempt in policy.attempts(): ...`.

        Each pass is one try; leaving the loop (return, break, raise) ends the retries, and
        going round again waits first. See Attempts.
        """
        return Attempts(self, sleep=sleep, random_fraction=random_fraction)


class Attempt:
    """One try of an operation: its number, whether it is the last, and the wait after it."""

    def __init__(
        self, policy: RetryPolicy, number: int, random_fraction: Callable[[], float]
    ) -> None:
        self.number = number
        self.last = number >= policy.max_attempts
        self._policy = policy
        self._random = random_fraction
        self._retry_after: float | None = None
        self._delay: float | None = None

    def retry_after(self, seconds: float | None) -> None:
        """The server said how long to wait before the next try (None: it did not)."""
        self._retry_after = seconds
        self._delay = None

    @property
    def delay(self) -> float:
        """The wait before the next try: the Retry-After given, else the policy's backoff."""
        if self._delay is None:
            self._delay = self._policy.delay(self.number, self._random(), self._retry_after)
        return self._delay


class Attempts:
    """Iterates the tries of one operation, waiting between them as the policy says.

    The loop ends after the last try; a caller that gives up earlier (or succeeds) leaves it.
    """

    def __init__(
        self, policy: RetryPolicy, *, sleep: Sleep, random_fraction: Callable[[], float]
    ) -> None:
        self._policy = policy
        self._sleep = sleep
        self._random = random_fraction
        self._current: Attempt | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Attempt:
        previous = self._current
        if previous is not None:
            if previous.last:
                raise StopAsyncIteration
            await self._sleep(previous.delay)
        number = 1 if previous is None else previous.number + 1
        self._current = Attempt(self._policy, number, self._random)
        return self._current


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is not a delay
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
