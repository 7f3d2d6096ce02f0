"""The one retry policy: how many tries, how long between them, and Retry-After first."""

from __future__ import annotations

import pytest

from bot.retry import RetryPolicy


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def test_attempts_make_every_try_and_wait_between_them_only() -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, jitter=False)
    numbers = [a.number async for a in policy.attempts(sleep=sleeps)]
    assert numbers == [1, 2, 3]
    assert sleeps.delays == [1.0, 2.0]


async def test_only_the_last_attempt_is_marked_last() -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=0.0)
    flags = [a.last async for a in policy.attempts(sleep=Sleeps())]
    assert flags == [False, True]


async def test_a_retry_after_replaces_the_backoff_for_the_next_wait() -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=2, base_delay=1.0, max_retry_after=30.0)
    async for attempt in policy.attempts(sleep=sleeps, random_fraction=lambda: 1.0):
        attempt.retry_after(3600.0)
    assert sleeps.delays == [30.0]


def test_without_jitter_the_backoff_grows_by_the_factor_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.25, factor=3.0, max_delay=2.0, jitter=False)
    assert [policy.backoff(n, 0.0) for n in (1, 2, 3, 100_000)] == [0.25, 0.75, 2.0, 2.0]


def test_a_policy_makes_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)
