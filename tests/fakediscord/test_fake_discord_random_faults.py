"""The fake Discord's seeded random faults, as the soak test uses them."""

from __future__ import annotations

import aiohttp
import pytest

from bot.sandbox.fakediscord import FakeDiscord, RandomFault


async def answers(fake: FakeDiscord, method: str, path: str, count: int) -> list[int]:
    async with aiohttp.ClientSession() as session:
        result = []
        for _ in range(count):
            async with session.request(method, fake.api_url + path) as response:
                result.append(response.status)
        return result


async def test_random_faults_hit_about_the_rate_and_replay_with_the_seed() -> None:
    async with FakeDiscord() as fake:
        runs = []
        for _ in range(2):
            fake.fail_randomly(0.3, [RandomFault("GET", "/gateway", 503)], seed=3)
            runs.append(await answers(fake, "GET", "/gateway", 200))
        assert runs[0] == runs[1]
        assert 30 <= runs[0].count(503) <= 90
        assert set(runs[0]) == {200, 503}


async def test_random_faults_only_match_their_route_and_fail_next_comes_first() -> None:
    async with FakeDiscord() as fake:
        fake.fail_randomly(1.0, [RandomFault("POST", "/gateway", 500)], seed=1)
        fake.fail_next("GET", "/gateway", 429, retry_after=0.5)
        assert await answers(fake, "GET", "/gateway", 2) == [429, 200]
        fake.fail_randomly(0.0, (), seed=0)


async def test_a_rate_outside_zero_to_one_is_refused() -> None:
    async with FakeDiscord() as fake:
        with pytest.raises(ValueError, match="rate"):
            fake.fail_randomly(-0.1, [], seed=0)
