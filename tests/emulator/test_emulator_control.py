"""The /_emulator/ control endpoints and serve(): scripting an emulator from another process."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import httpx

from bot.emulator import FalEmulator, JobScript, serve

from .conftest import FAST_PREVIEW, KEY

T2V = "/fal-ai/pika/v2.5/text-to-video"


async def test_script_and_advance_over_http(emu: FalEmulator, http: httpx.AsyncClient) -> None:
    scripted = await http.post(
        "/_emulator/script",
        json={
            "default": {"run_seconds": 0.01},
            "next": [{"hold_in_queue": True, "queue_position": 4}],
        },
    )
    data = (await http.post(T2V, json={"prompt": "p"})).json()

    advanced = await http.post(f"/_emulator/advance/{data['request_id']}")

    assert scripted.json()["pending"] == 1
    assert data["queue_position"] == 4
    assert advanced.json() == {"status": "IN_PROGRESS"}
    assert emu.default_script == JobScript(run_seconds=0.01)


async def test_faults_counts_submissions_and_reset_over_http(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    await http.post(
        "/_emulator/faults", json={"faults": [{"kind": "submit", "status": 429, "retry_after": 1}]}
    )
    refused = await http.post(T2V, json={"prompt": "p"})
    accepted = await http.post(T2V, json={"prompt": "p"})

    counts = (await http.get("/_emulator/counts")).json()
    submissions = (await http.get("/_emulator/submissions")).json()
    await http.post("/_emulator/reset")

    assert (refused.status_code, refused.headers["retry-after"]) == (429, "1")
    assert counts == {"submit": 2}
    assert [s["request_id"] for s in submissions] == [accepted.json()["request_id"]]
    assert "authorization" not in submissions[0]["headers"]
    assert (await http.get("/_emulator/counts")).json() == {}


async def test_bad_control_json_is_a_400_naming_the_problem(http: httpx.AsyncClient) -> None:
    response = await http.post("/_emulator/faults", json={"kind": "status", "colour": "red"})

    assert response.status_code == 400
    assert "colour" in response.json()["detail"]


async def test_endpoints_and_expiry_over_http(emu: FalEmulator, http: httpx.AsyncClient) -> None:
    await http.post("/_emulator/endpoints", json={"remove": ["fal-ai/pika/v2.5/text-to-video"]})
    gone = await http.post(T2V, json={"prompt": "p"})
    await http.post("/_emulator/endpoints", json={"restore": ["fal-ai/pika/v2.5/text-to-video"]})
    data = (await http.post(T2V, json={"prompt": "p"})).json()
    await emu.wait_for_status(data["request_id"], "COMPLETED")
    await http.post(f"/_emulator/expire/{data['request_id']}")

    assert gone.status_code == 404
    assert (await http.get(data["response_url"])).status_code == 404


async def test_control_endpoints_can_be_turned_off() -> None:
    async with FalEmulator(key=KEY, control=False) as emu, httpx.AsyncClient() as client:
        response = await client.get(f"{emu.base_url}/_emulator/counts")

    assert response.status_code == 404


async def test_serve_runs_until_cancelled() -> None:
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve("127.0.0.1", 0, KEY, preview=FAST_PREVIEW, ready=ready.set_result)
    )
    base = await ready
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Key {KEY}"}) as http:
        data = (await http.post(T2V, json={"prompt": "p"})).json()
        streamed = await http.get(data["status_url"] + "/stream")
        counts = (await http.get("/_emulator/counts")).json()

    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert '"COMPLETED"' in streamed.text
    assert counts == {"submit": 1, "stream": 1}
    assert task.cancelled()


async def test_module_entry_point_serves_until_terminated() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "fal-emulator",
        "--port",
        "0",
        "--key",
        KEY,
        "--short-side",
        "64",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        base = line.strip().rsplit(" ", 1)[-1]
        async with httpx.AsyncClient(base_url=base) as http:
            refused = await http.post(T2V, json={"prompt": "p"})
            counts = (await http.get("/_emulator/counts")).json()
    finally:
        process.terminate()
        await process.wait()

    assert line.startswith("fal emulator listening on http://127.0.0.1:")
    assert refused.status_code == 401
    assert counts == {"submit": 1}
