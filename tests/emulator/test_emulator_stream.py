"""The status stream: an event per change, keep-alive comments, closing after COMPLETED."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot.emulator import FalEmulator, JobScript

T2V = "fal-ai/pika/v2.5/text-to-video"


async def _submit(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.post(f"/{T2V}", json={"prompt": "waves"})
    data: dict[str, Any] = response.json()
    return data


async def test_stream_sends_each_status_change_and_closes_after_completed(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    # Each queue step lasts 0.5 s: long enough for the stream to connect before the first step
    # passes, even on a busy machine (20 ms steps made this depend on the machine's load).
    emu.script_next(JobScript(queue_position=2, queue_seconds=1.5))
    data = await _submit(http)

    events: list[dict[str, Any]] = []
    async with http.stream("GET", data["status_url"] + "/stream", params={"logs": 1}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))

    statuses = [event["status"] for event in events]
    positions = [e["queue_position"] for e in events if e["status"] == "IN_QUEUE"]
    assert statuses[-1] == "COMPLETED"
    assert "IN_PROGRESS" in statuses
    assert positions == [2, 1, 0]
    assert events[-1]["logs"]
    assert emu.counts["stream"] == 1


async def test_stream_sends_keep_alive_comments_while_nothing_changes(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.script_next(JobScript(hold_in_progress=True))
    data = await _submit(http)
    await emu.wait_for_status(data["request_id"], "IN_PROGRESS")

    lines: list[str] = []
    async with http.stream("GET", data["status_url"] + "/stream") as response:
        async for line in response.aiter_lines():
            lines.append(line)
            if line == ": keep-alive":
                await emu.advance(data["request_id"])

    assert ": keep-alive" in lines
    assert json.loads(lines[-2].removeprefix("data: "))["status"] == "COMPLETED"


async def test_stream_of_a_finished_request_sends_completed_once(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    data = await _submit(http)
    await emu.wait_for_status(data["request_id"], "COMPLETED")

    response = await http.get(data["status_url"] + "/stream")

    assert response.text.count("data: ") == 1
    assert '"COMPLETED"' in response.text


async def test_stream_break_after_drops_the_connection_before_completed(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.script_next(JobScript(stream_break_after=1, hold_in_queue=True, hold_in_progress=True))
    data = await _submit(http)

    seen: list[str] = []
    broken = False
    try:
        async with http.stream("GET", data["status_url"] + "/stream") as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line.removeprefix("data: "))["status"])
                    await emu.advance(data["request_id"])
    except httpx.TransportError:
        broken = True

    assert broken
    assert seen == ["IN_QUEUE"]
    # The job itself is unharmed: polling still finds it and it completes.
    assert (await http.get(data["status_url"])).json()["status"] == "IN_PROGRESS"
    assert await emu.advance(data["request_id"]) == "COMPLETED"


async def test_stream_of_an_unknown_request_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/fal-ai/pika/requests/nope/status/stream")

    assert response.status_code == 404
