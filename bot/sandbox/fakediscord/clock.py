"""Clocks for the fake Discord: real UTC time, optionally shifted forward by a test."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real time, aware UTC."""
    return datetime.now(UTC)


class MovableClock:
    """Real UTC time plus an offset that a test moves forward (expiring tokens without sleeps)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta | float) -> None:
        """Move the clock forward by a timedelta or a number of seconds."""
        self.offset += by if isinstance(by, timedelta) else timedelta(seconds=by)
