"""The fal client's pure pieces: SSE parsing, status parsing, retry timing, URLs and secrecy."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from bot.fal import (
    Completed,
    FalClient,
    FalSubmissionUnknown,
    InProgress,
    Queued,
    RetryPolicy,
    parse_retry_after,
)
from bot.fal.models import parse_status
from bot.fal.retry import retry_after_of, should_retry_response, should_retry_submit_response
from bot.fal.sse import EventParser


def feed_all(lines: list[str]) -> list[str]:
    parser = EventParser()
    events = [e for line in lines if (e := parser.feed(line)) is not None]
    tail = parser.flush()
    return [*events, tail] if tail is not None else events


def test_sse_parser_yields_data_and_skips_comments() -> None:
    lines = [": keep-alive", 'data: {"a": 1}', "", ":", "event: x", 'data:{"b": 2}', ""]
    assert feed_all(lines) == ['{"a": 1}', '{"b": 2}']


def test_sse_parser_joins_multiline_data_and_flushes_unterminated_event() -> None:
    assert feed_all(["data: one", "data: two\r", "", "data: last"]) == ["one\ntwo", "last"]


def test_parse_status_variants() -> None:
    assert parse_status({"status": "IN_QUEUE", "queue_position": 3}) == Queued(position=3)
    running = parse_status(
        {
            "status": "IN_PROGRESS",
            "logs": [{"message": "step 1", "level": "INFO", "timestamp": "2024-05-01T10:00:00"}],
        }
    )
    assert isinstance(running, InProgress)
    assert running.logs[0].message == "step 1"
    assert running.logs[0].timestamp == datetime(2024, 5, 1, 10, tzinfo=UTC)
    done = parse_status(
        {
            "status": "COMPLETED",
            "logs": [],
            "metrics": {"inference_time": 1.5},
            "error": "boom",
            "error_type": "runner_scheduling_failure",
        }
    )
    assert done == Completed(
        logs=(), inference_time=1.5, error="boom", error_type="runner_scheduling_failure"
    )
    assert not done.ok


def test_unknown_status_counts_as_still_running() -> None:
    assert parse_status({"status": "WARMING_UP"}) == InProgress()
    assert parse_status({"nothing": True}) == InProgress()


def test_full_jitter_backoff_is_capped_and_scaled_by_the_random_fraction() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    assert policy.backoff(1, 1.0) == 1.0
    assert policy.backoff(3, 1.0) == 4.0
    assert policy.backoff(10, 1.0) == 5.0
    assert policy.backoff(10, 0.5) == 2.5
    assert policy.backoff(2, 0.0) == 0.0


def test_retry_after_wins_over_backoff_but_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, max_retry_after=30.0)
    request = httpx.Request("GET", "http://127.0.0.1/x")
    answer = httpx.Response(429, headers={"Retry-After": "7"}, request=request)
    assert policy.delay(1, 1.0, retry_after_of(answer)) == 7.0
    greedy = httpx.Response(429, headers={"Retry-After": "3600"}, request=request)
    assert policy.delay(1, 1.0, retry_after_of(greedy)) == 30.0


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("Wed, 01 May 2024 10:00:12 GMT", now=now) == 12.0
    assert parse_retry_after("Wed, 01 May 2024 09:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_submit_retry_only_for_gateway_refusals_without_request_id() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/fal-ai/pika/v2.2/text-to-video")
    bare = httpx.Response(503, request=request)
    with_id = httpx.Response(503, headers={"x-fal-request-id": "r1"}, request=request)
    server_error = httpx.Response(500, request=request)
    user_timeout = httpx.Response(
        504, headers={"X-Fal-Request-Timeout-Type": "user"}, request=request
    )
    assert should_retry_submit_response(bare)
    assert not should_retry_submit_response(with_id)
    assert not should_retry_submit_response(server_error)
    assert not should_retry_submit_response(user_timeout)
    assert should_retry_response(server_error)
    assert not should_retry_response(user_timeout)


async def test_handle_for_uses_owner_and_app_only() -> None:
    async with FalClient("http://127.0.0.1:9/", "http://127.0.0.1:9", "k") as fal:
        handle = fal.handle_for("fal-ai/pika/v2.2/image-to-video", "abc")
    assert handle.status_url == "http://127.0.0.1:9/fal-ai/pika/requests/abc/status"
    assert handle.response_url == "http://127.0.0.1:9/fal-ai/pika/requests/abc"
    assert handle.cancel_url == "http://127.0.0.1:9/fal-ai/pika/requests/abc/cancel"
    assert handle.endpoint_id == "fal-ai/pika/v2.2/image-to-video"


async def test_handle_for_rejects_an_id_without_owner_and_app() -> None:
    async with FalClient("http://127.0.0.1:9", "http://127.0.0.1:9", "k") as fal:
        with pytest.raises(ValueError, match="endpoint"):
            fal.handle_for("pika", "abc")


async def test_key_stays_out_of_repr() -> None:
    async with FalClient(
        "http://127.0.0.1:9", "http://127.0.0.1:9", SecretStr("sekrit-key")
    ) as fal:
        assert "sekrit" not in repr(fal)


async def test_an_injected_http_client_is_left_open() -> None:
    async with httpx.AsyncClient() as http:
        async with FalClient("http://127.0.0.1:9", "http://127.0.0.1:9", "k", http=http):
            pass
        assert not http.is_closed


async def test_a_webhook_url_is_passed_as_the_fal_webhook_query_parameter() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"request_id": "r1", "status": "IN_QUEUE"})

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http,
        FalClient("http://127.0.0.1:9", "http://127.0.0.1:9", "k", http=http) as fal,
    ):
        handle = await fal.submit(
            "fal-ai/pika/v2.2/text-to-video",
            {"prompt": "x"},
            webhook_url="https://bot.example/hooks/fal?t=1",
        )

    assert seen[0].url.params["fal_webhook"] == "https://bot.example/hooks/fal?t=1"
    assert seen[0].url.path == "/fal-ai/pika/v2.2/text-to-video"
    # With no URLs in the answer, the handle falls back to the owner/app form.
    assert handle.status_url == "http://127.0.0.1:9/fal-ai/pika/requests/r1/status"


async def test_a_submit_answer_without_a_body_falls_back_to_the_request_id_header() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>ok</html>", headers={"x-fal-request-id": "r9"})

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http,
        FalClient("http://127.0.0.1:9", "http://127.0.0.1:9", "k", http=http) as fal,
    ):
        handle = await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "x"})

    assert handle.request_id == "r9"
    assert handle.cancel_url == "http://127.0.0.1:9/fal-ai/pika/requests/r9/cancel"


async def test_a_submit_answer_naming_no_request_is_a_submission_unknown() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>ok</html>")

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http,
        FalClient("http://127.0.0.1:9", "http://127.0.0.1:9", "k", http=http) as fal,
    ):
        with pytest.raises(FalSubmissionUnknown):
            await fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "x"})
