"""The queue protocol at the HTTP level: submit, status, result, cancel, scripts and holds."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bot.emulator import FalEmulator, JobScript, UnknownRequest

from .conftest import FAST_PREVIEW, KEY, video_shape

T2V = "fal-ai/pika/v2.5/text-to-video"
BODY = {"prompt": "a fox in the snow"}


async def _submit(
    http: httpx.AsyncClient, body: dict[str, Any] | None = None, endpoint: str = T2V
) -> dict[str, Any]:
    response = await http.post(f"/{endpoint}", json=BODY if body is None else body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_submit_answers_urls_under_owner_and_app_only(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    response = await http.post(f"/{T2V}", json=BODY)

    data = response.json()
    request_id = data["request_id"]
    base = f"{emu.base_url}/fal-ai/pika/requests/{request_id}"
    assert data["status"] == "IN_QUEUE"
    assert data["queue_position"] == 0
    assert data["status_url"] == f"{base}/status"
    assert data["response_url"] == base
    assert data["cancel_url"] == f"{base}/cancel"
    assert response.headers["x-fal-request-id"] == request_id


async def test_submission_is_recorded_without_the_key(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    data = await _submit(http)

    [submission] = emu.submissions
    assert submission.request_id == data["request_id"]
    assert submission.endpoint_id == T2V
    assert submission.body == BODY
    assert "authorization" not in submission.headers
    assert KEY not in repr(submission)
    assert submission.headers["content-type"] == "application/json"


async def test_requests_without_the_key_are_refused_with_401(emu: FalEmulator) -> None:
    async with httpx.AsyncClient(base_url=emu.base_url) as anonymous:
        missing = await anonymous.post(f"/{T2V}", json=BODY)
        wrong = await anonymous.post(
            f"/{T2V}", json=BODY, headers={"Authorization": "Key not-the-key"}
        )
        token = await anonymous.post("/storage/auth/token", json={})

    assert (missing.status_code, wrong.status_code, token.status_code) == (401, 401, 401)
    assert "detail" in missing.json()
    assert emu.submissions == []
    assert emu.counts["submit"] == 2


async def test_unknown_and_removed_endpoints_answer_404(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    unknown = await http.post("/fal-ai/pika/v9/text-to-video", json=BODY)
    emu.remove_endpoint("fal-ai/pika/v2/pikaswaps")
    removed = await http.post("/fal-ai/pika/v2/pikaswaps", json={"video_url": "data:,x"})

    assert unknown.status_code == 404
    assert removed.status_code == 404
    assert "not found" in removed.json()["detail"]


async def test_held_request_moves_through_each_stage_on_advance(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.script_next(JobScript(queue_position=2, hold_in_queue=True, hold_in_progress=True))
    data = await _submit(http)
    status_url = data["status_url"]

    queued = await http.get(status_url, params={"logs": 1})
    assert queued.status_code == 202
    assert queued.json()["status"] == "IN_QUEUE"

    assert await emu.advance(data["request_id"]) == "IN_PROGRESS"
    running = await http.get(status_url, params={"logs": 1})
    assert running.status_code == 202
    assert running.json()["status"] == "IN_PROGRESS"
    assert running.json()["logs"][0].keys() >= {"message", "level", "timestamp"}

    assert await emu.advance(data["request_id"]) == "COMPLETED"
    done = await http.get(status_url, params={"logs": 1})
    assert done.status_code == 200
    assert done.json()["status"] == "COMPLETED"
    assert "inference_time" in done.json()["metrics"]
    assert "error" not in done.json()


async def test_logs_are_left_out_unless_asked_for(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    data = await _submit(http)
    await emu.wait_for_status(data["request_id"], "COMPLETED")

    without = (await http.get(data["status_url"])).json()
    with_logs = (await http.get(data["status_url"], params={"logs": "true"})).json()

    assert without["logs"] is None
    assert with_logs["logs"]


async def test_status_of_an_unknown_request_or_a_full_endpoint_path_is_404(
    http: httpx.AsyncClient,
) -> None:
    data = await _submit(http)
    long_form = f"/{T2V}/requests/{data['request_id']}/status"

    assert (await http.get("/fal-ai/pika/requests/nope/status")).status_code == 404
    assert (await http.get(long_form)).status_code == 404


async def test_result_before_completion_answers_400(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.script_next(JobScript(hold_in_queue=True))
    data = await _submit(http)

    response = await http.get(data["response_url"])

    assert response.status_code == 400
    assert "in queue" in response.json()["detail"]


async def test_result_is_a_video_file_that_downloads_without_auth(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    data = await _submit(
        http, {"prompt": "tall", "aspect_ratio": "9:16"}, "fal-ai/pika/v2.2/text-to-video"
    )
    await emu.wait_for_status(data["request_id"], "COMPLETED")

    video = (await http.get(data["response_url"])).json()["video"]
    async with httpx.AsyncClient() as anonymous:
        download = await anonymous.get(video["url"])

    width, height, _ = video_shape(download.content)
    assert width / height == pytest.approx(9 / 16, rel=0.05)
    assert emu.counts["file"] == 1


async def test_model_error_completes_with_error_and_a_422_result(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.script_next(JobScript(outcome="model_error", error_message="bad prompt"))
    data = await _submit(http)
    await emu.wait_for_status(data["request_id"], "COMPLETED")

    status = (await http.get(data["status_url"])).json()
    result = await http.get(data["response_url"])

    assert status["error"] == "bad prompt"
    assert status["error_type"] == "content_policy_violation"
    assert result.status_code == 422
    assert result.json()["detail"][0]["msg"] == "bad prompt"


async def test_platform_error_completes_with_error_type_and_a_5xx_result(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.script_next(JobScript(outcome="platform_error"))
    data = await _submit(http)
    await emu.wait_for_status(data["request_id"], "COMPLETED")

    status = (await http.get(data["status_url"])).json()
    result = await http.get(data["response_url"])

    assert status["error_type"] == "runner_scheduling_failure"
    assert result.status_code == 503
    assert result.headers["x-fal-error-type"] == "runner_scheduling_failure"
    assert result.json()["error_type"] == "runner_scheduling_failure"


async def test_output_size_pads_the_video_and_it_still_plays(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.script_next(JobScript(output_size=300_000))
    data = await _submit(http)
    await emu.wait_for_status(data["request_id"], "COMPLETED")

    video = (await http.get(data["response_url"])).json()["video"]
    download = await http.get(video["url"])

    assert video["file_size"] == len(download.content) == 300_000
    assert video_shape(download.content)[2] > 1


async def test_expired_result_answers_404(emu: FalEmulator, http: httpx.AsyncClient) -> None:
    data = await _submit(http)
    await emu.wait_for_status(data["request_id"], "COMPLETED")

    emu.expire(data["request_id"])

    assert (await http.get(data["response_url"])).status_code == 404


async def test_cancel_in_queue_ends_the_request_as_cancelled(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.script_next(JobScript(hold_in_queue=True))
    data = await _submit(http)

    cancel = await http.put(data["cancel_url"])
    await emu.wait_for_status(data["request_id"], "COMPLETED")

    assert cancel.status_code == 202
    assert cancel.json() == {"status": "CANCELLATION_REQUESTED"}
    status = (await http.get(data["status_url"])).json()
    assert status["error_type"] == "request_cancelled"
    assert (await http.get(data["response_url"])).status_code == 400


async def test_cancel_in_progress_is_accepted_but_the_video_is_still_made(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.script_next(JobScript(hold_in_progress=True))
    data = await _submit(http)
    await emu.wait_for_status(data["request_id"], "IN_PROGRESS")

    cancel = await http.put(data["cancel_url"])
    await emu.advance(data["request_id"])

    assert cancel.status_code == 202
    result = await http.get(data["response_url"])
    assert result.status_code == 200
    assert "video" in result.json()


async def test_cancel_after_completion_and_of_unknown_requests(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    data = await _submit(http)
    await emu.wait_for_status(data["request_id"], "COMPLETED")

    late = await http.put(data["cancel_url"])
    unknown = await http.put("/fal-ai/pika/requests/nope/cancel")

    assert (late.status_code, late.json()) == (400, {"status": "ALREADY_COMPLETED"})
    assert (unknown.status_code, unknown.json()) == (404, {"status": "NOT_FOUND"})
    assert emu.counts["cancel"] == 2


async def test_scripts_apply_in_order_then_the_default(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    emu.default_script = JobScript(run_seconds=0.01)
    first, second = JobScript(queue_position=5), JobScript(queue_position=7)
    emu.script_next(first, second)

    for _ in range(3):
        await _submit(http)

    assert [s.script for s in emu.submissions] == [first, second, emu.default_script]


async def test_advance_and_wait_of_an_unknown_request_raise(emu: FalEmulator) -> None:
    with pytest.raises(UnknownRequest):
        await emu.advance("nope")
    with pytest.raises(UnknownRequest):
        await emu.wait_for_status("nope", "COMPLETED")


async def test_counts_every_request_by_kind(emu: FalEmulator, http: httpx.AsyncClient) -> None:
    data = await _submit(http)
    await emu.wait_for_status(data["request_id"], "COMPLETED")
    await http.get(data["status_url"])
    video = (await http.get(data["response_url"])).json()["video"]
    await http.get(video["url"])
    await http.put(data["cancel_url"])

    assert dict(emu.counts) == {"submit": 1, "status": 1, "result": 1, "file": 1, "cancel": 1}


async def test_concurrency_limit_keeps_the_rest_in_queue_in_order() -> None:
    async with FalEmulator(key=KEY, preview=FAST_PREVIEW, concurrency=1) as limited:
        limited.default_script = JobScript(hold_in_progress=True)
        headers = {"Authorization": f"Key {KEY}"}
        async with httpx.AsyncClient(base_url=limited.base_url, headers=headers) as client:
            first, second, third = [await _submit(client) for _ in range(3)]
            seen: list[tuple[str, int | None]] = []
            async with client.stream("GET", third["status_url"] + "/stream") as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    event = json.loads(line.removeprefix("data: "))
                    seen.append((event["status"], event.get("queue_position")))
                    # Each time the third request moves up, finish whoever is running.
                    if seen[-1] == ("IN_QUEUE", 1):
                        assert limited.status_of(first["request_id"]) == "IN_PROGRESS"
                        await limited.advance(first["request_id"])
                    elif seen[-1] == ("IN_QUEUE", 0) and ("IN_QUEUE", 1) in seen:
                        assert limited.status_of(second["request_id"]) == "IN_PROGRESS"
                        await limited.advance(second["request_id"])
                    elif seen[-1][0] == "IN_PROGRESS":
                        await limited.advance(third["request_id"])

    statuses = [status for status, _ in seen]
    assert seen[seen.index(("IN_QUEUE", 1)) + 1] == ("IN_QUEUE", 0)
    assert statuses[-1] == "COMPLETED"
    assert "IN_PROGRESS" in statuses


async def test_urls_use_the_host_the_caller_reached(http: httpx.AsyncClient) -> None:
    response = await http.post(f"/{T2V}", json=BODY, headers={"Host": "fal-emulator:8790"})

    assert response.json()["status_url"].startswith(
        "http://fal-emulator:8790/fal-ai/pika/requests/"
    )
