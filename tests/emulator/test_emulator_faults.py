"""Scripted faults: error answers, Retry-After, error types, dropped connections, lost submits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.emulator import FalEmulator, Fault, JobScript, ScriptError

T2V = "fal-ai/pika/v2.5/text-to-video"
BODY = {"prompt": "rain"}


async def _submit(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.post(f"/{T2V}", json=BODY)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


async def test_status_fault_answers_its_status_for_times_requests_then_stops(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    data = await _submit(http)
    emu.inject(Fault(kind="status", status=503, times=2))

    codes = [(await http.get(data["status_url"])).status_code for _ in range(3)]

    assert codes[:2] == [503, 503]
    assert codes[2] in (200, 202)
    assert emu.counts["status"] == 3


async def test_429_carries_retry_after(emu: FalEmulator, http: httpx.AsyncClient) -> None:
    data = await _submit(http)
    emu.inject(Fault(kind="result", status=429, retry_after=0.01))

    response = await http.get(data["response_url"])

    assert response.status_code == 429
    assert response.headers["retry-after"] == "0.01"


async def test_error_type_goes_in_header_and_body(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.inject(Fault(kind="submit", status=503, error_type="runner_scheduling_failure"))

    response = await http.post(f"/{T2V}", json=BODY)

    assert response.status_code == 503
    assert response.headers["x-fal-error-type"] == "runner_scheduling_failure"
    assert response.json()["error_type"] == "runner_scheduling_failure"
    assert "x-fal-request-id" not in response.headers
    assert emu.submissions == []


async def test_request_id_header_marks_the_answer_as_fals(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.inject(Fault(kind="submit", status=503, request_id_header=True))

    response = await http.post(f"/{T2V}", json=BODY)

    assert response.status_code == 503
    assert response.headers["x-fal-request-id"]


async def test_user_timeout_answers_504_with_the_timeout_type(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.inject(Fault(kind="submit", timeout_type_user=True))

    response = await http.post(f"/{T2V}", json=BODY)

    assert response.status_code == 504
    assert response.headers["x-fal-request-timeout-type"] == "user"


async def test_custom_body_is_answered_as_is(emu: FalEmulator, http: httpx.AsyncClient) -> None:
    emu.inject(Fault(kind="token", status=500, body={"detail": "storage is down"}))

    response = await http.post("/storage/auth/token", json={})

    assert (response.status_code, response.json()) == (500, {"detail": "storage is down"})


async def test_reset_drops_the_connection_without_an_answer(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    data = await _submit(http)
    emu.inject(Fault(kind="status", reset=True))

    with pytest.raises(httpx.TransportError):
        await http.get(data["status_url"])

    assert (await http.get(data["status_url"])).status_code in (200, 202)


async def test_delay_answers_late_enough_for_a_read_timeout(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    data = await _submit(http)
    emu.inject(Fault(kind="result", delay=5.0))

    with pytest.raises(httpx.ReadTimeout):
        await http.get(data["response_url"], timeout=httpx.Timeout(10, read=0.05))


async def test_submit_reset_after_accept_leaves_a_running_job_behind(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.inject(Fault(kind="submit", reset=True, after_accept=True))

    with pytest.raises(httpx.TransportError):
        await http.post(f"/{T2V}", json=BODY)

    [submission] = emu.submissions
    assert emu.counts["submit"] == 1
    await emu.wait_for_status(submission.request_id, "COMPLETED")


async def test_submit_delay_after_accept_is_the_submission_unknown_case(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.inject(Fault(kind="submit", delay=5.0, after_accept=True))

    with pytest.raises(httpx.ReadTimeout):
        await http.post(f"/{T2V}", json=BODY, timeout=httpx.Timeout(10, read=0.05))

    assert len(emu.submissions) == 1


async def test_file_and_stream_faults_apply_to_their_kind_only(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.script_next(JobScript())
    data = await _submit(http)
    await emu.wait_for_status(data["request_id"], "COMPLETED")
    emu.inject(Fault(kind="file", status=502), Fault(kind="stream", status=503, times=5))

    url = (await http.get(data["response_url"])).json()["video"]["url"]
    stream = await http.get(data["status_url"] + "/stream")
    first, second = await http.get(url), await http.get(url)

    assert stream.status_code == 503
    assert (first.status_code, second.status_code) == (502, 200)


def test_fault_and_script_refuse_nonsense() -> None:
    with pytest.raises(ScriptError):
        Fault(kind="nope")  # type: ignore[arg-type]
    with pytest.raises(ScriptError):
        Fault(kind="status", after_accept=True)
    with pytest.raises(ScriptError):
        JobScript(outcome="explode")  # type: ignore[arg-type]
