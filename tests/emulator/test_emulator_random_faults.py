"""The emulator's seeded random faults, its fault counter, and waiting for requests to arrive."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.emulator import FalEmulator, Fault, JobScript, ScriptError

TEXT = "fal-ai/pika/v2.5/text-to-video"


async def failures(http: httpx.AsyncClient, url: str, count: int) -> list[bool]:
    """Which of `count` status requests were answered by the injected 503."""
    return [(await http.get(url)).status_code == 503 for _ in range(count)]


async def test_random_faults_hit_about_the_rate_and_replay_with_the_seed(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    job = (await http.post(f"/{TEXT}", json={"prompt": "a fox"})).json()
    runs = []
    for _ in range(2):
        emu.fail_randomly(0.3, [Fault(kind="status", status=503)], seed=7)
        runs.append(await failures(http, job["status_url"], 200))
    assert runs[0] == runs[1], "the same seed fails the same requests"
    failed = runs[0].count(True)
    assert 30 <= failed <= 90
    assert emu.faulted["status"] == 2 * failed


async def test_random_faults_only_touch_their_kind_and_queued_faults_come_first(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.fail_randomly(1.0, [Fault(kind="result", status=500)], seed=1)
    emu.inject(Fault(kind="status", status=429, retry_after=1))
    job = (await http.post(f"/{TEXT}", json={"prompt": "a fox"})).json()
    assert (await http.get(job["status_url"])).status_code == 429
    assert (await http.get(job["status_url"])).status_code in (200, 202)
    assert (await http.get(job["response_url"])).status_code == 500
    emu.clear_faults()
    await emu.wait_for_status(job["request_id"], "COMPLETED")
    assert (await http.get(job["response_url"])).status_code == 200


async def test_a_rate_outside_zero_to_one_is_refused(emu: FalEmulator) -> None:
    with pytest.raises(ScriptError):
        emu.fail_randomly(1.5, [], seed=0)


async def test_wait_for_requests_wakes_when_they_arrive(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    job = (await http.post(f"/{TEXT}", json={"prompt": "a fox"})).json()
    waiter = asyncio.create_task(emu.wait_for_requests("status", 2))
    await http.get(job["status_url"])
    assert not waiter.done()
    await http.get(job["status_url"])
    async with asyncio.timeout(5):
        await waiter


async def test_a_broken_stream_of_a_held_job_drops_at_the_keep_alive(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.script_next(JobScript(stream_break_after=1, hold_in_queue=True))
    job = (await http.post(f"/{TEXT}", json={"prompt": "a fox"})).json()
    seen: list[str] = []

    async def read() -> None:
        async with http.stream("GET", job["status_url"] + "/stream") as response:
            async for line in response.aiter_lines():
                seen.append(line)

    # Keep-alives come every 0.05 s, so only the drop ends this read (the timeout fails it).
    async with asyncio.timeout(5):
        with pytest.raises(httpx.TransportError):
            await read()
    assert len([line for line in seen if line.startswith("data: ")]) == 1
