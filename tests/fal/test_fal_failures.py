"""How the fal client fails and retries: each error class, GET retries, and careful submits."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import pytest

from bot.emulator import FalEmulator, Fault, JobScript
from bot.fal import (
    Completed,
    FalAuthError,
    FalClient,
    FalNotFound,
    FalPlatformError,
    FalStartTimeout,
    FalSubmissionUnknown,
    FalTimeouts,
    FalUnavailable,
    FalValidationError,
    RetryPolicy,
)

from .fal_support import KEY, RETRY, RecordingSleep

TEXT = "fal-ai/pika/v2.2/text-to-video"
POLL = 7.0
QUICK_READ = FalTimeouts(connect=2.0, read=0.3, write=2.0, pool=2.0, stream_read=5.0, upload=5.0)


async def finish(fal: FalClient, emu: FalEmulator, script: JobScript) -> Completed:
    emu.script_next(script)
    handle = await fal.submit(TEXT, {"prompt": "a lighthouse"})
    async with asyncio.timeout(20):  # a safety net against a hang, not a timing assertion
        statuses = [s async for s in fal.watch(handle, poll_interval=POLL)]
    final = statuses[-1]
    assert isinstance(final, Completed)
    return final


# -- error classes ---------------------------------------------------------------------------


async def test_a_bad_body_is_a_validation_error_naming_the_field(
    fal: FalClient, emu: FalEmulator
) -> None:
    with pytest.raises(FalValidationError) as caught:
        await fal.submit(TEXT, {"negative_prompt": "blur"})

    assert caught.value.status == 422
    assert [(f.field, f.type) for f in caught.value.fields] == [("prompt", "missing")]
    assert "prompt" in str(caught.value)
    assert emu.counts["submit"] == 1


async def test_a_plain_string_detail_is_a_validation_error_without_fields(
    fal: FalClient, emu: FalEmulator
) -> None:
    emu.inject(Fault(kind="submit", status=422, body={"detail": "The prompt was flagged."}))

    with pytest.raises(FalValidationError) as caught:
        await fal.submit(TEXT, {"prompt": "something"})

    assert caught.value.fields == []
    assert "The prompt was flagged." in str(caught.value)


async def test_a_wrong_key_is_an_auth_error_that_does_not_repeat_the_key(
    make_client: Callable[..., FalClient], emu: FalEmulator
) -> None:
    async with make_client(key="wrong-secret-key") as fal:
        with pytest.raises(FalAuthError) as caught:
            await fal.submit(TEXT, {"prompt": "x"})

    assert caught.value.status == 401
    assert "wrong-secret-key" not in str(caught.value)
    assert "wrong-secret-key" not in repr(caught.value)
    assert emu.counts["submit"] == 1


async def test_a_forbidden_status_is_an_auth_error(fal: FalClient, emu: FalEmulator) -> None:
    handle = await fal.submit(TEXT, {"prompt": "x"})
    emu.inject(Fault(kind="status", status=403))

    with pytest.raises(FalAuthError):
        await fal.status(handle)


async def test_a_model_error_ends_completed_and_its_result_is_a_validation_error(
    fal: FalClient, emu: FalEmulator
) -> None:
    final = await finish(fal, emu, JobScript(outcome="model_error", error_message="bad prompt"))
    handle = fal.handle_for(TEXT, emu.submissions[-1].request_id)

    with pytest.raises(FalValidationError) as caught:
        await fal.result(handle)

    assert not final.ok
    assert caught.value.status == 422
    assert caught.value.fields
    assert caught.value.request_id == handle.request_id


async def test_a_platform_error_result_is_a_retryable_platform_error_with_its_type(
    fal: FalClient, emu: FalEmulator
) -> None:
    final = await finish(
        fal, emu, JobScript(outcome="platform_error", error_type="runner_scheduling_failure")
    )
    handle = fal.handle_for(TEXT, emu.submissions[-1].request_id)

    with pytest.raises(FalPlatformError) as caught:
        await fal.result(handle)

    assert final.error_type == "runner_scheduling_failure"
    assert caught.value.error_type == "runner_scheduling_failure"
    assert caught.value.retryable
    assert emu.counts["result"] == RETRY.max_attempts  # a 5xx result is retried, then reported


async def test_a_user_start_timeout_is_never_retried(fal: FalClient, emu: FalEmulator) -> None:
    emu.inject(Fault(kind="submit", timeout_type_user=True))

    with pytest.raises(FalStartTimeout):
        await fal.submit(TEXT, {"prompt": "x"}, start_timeout=5)

    assert emu.counts["submit"] == 1


async def test_a_removed_endpoint_is_not_found_naming_the_endpoint(
    fal: FalClient, emu: FalEmulator
) -> None:
    emu.remove_endpoint("fal-ai/pika/v2/pikaswaps")

    with pytest.raises(FalNotFound) as caught:
        await fal.submit("fal-ai/pika/v2/pikaswaps", {"video_url": "http://127.0.0.1/v.mp4"})

    assert caught.value.what == "endpoint"
    assert caught.value.endpoint_id == "fal-ai/pika/v2/pikaswaps"


async def test_an_unknown_request_is_not_found_naming_the_request(fal: FalClient) -> None:
    handle = fal.handle_for(TEXT, "no-such-request")

    with pytest.raises(FalNotFound) as caught:
        await fal.status(handle)

    assert caught.value.what == "request"
    assert caught.value.request_id == "no-such-request"


# -- submits: never twice unless fal surely never saw the first ------------------------------


async def test_a_submit_that_times_out_after_sending_is_unknown_and_sent_once(
    make_client: Callable[..., FalClient], emu: FalEmulator
) -> None:
    emu.inject(Fault(kind="submit", after_accept=True, delay=3.0))
    async with make_client(timeouts=QUICK_READ) as fal:
        with pytest.raises(FalSubmissionUnknown) as caught:
            await fal.submit(TEXT, {"prompt": "x"})

    assert caught.value.endpoint_id == TEXT
    assert emu.counts["submit"] == 1
    assert len(emu.submissions) == 1


async def test_a_submit_whose_connection_drops_after_sending_is_unknown_and_sent_once(
    fal: FalClient, emu: FalEmulator
) -> None:
    emu.inject(Fault(kind="submit", after_accept=True, reset=True))

    with pytest.raises(FalSubmissionUnknown):
        await fal.submit(TEXT, {"prompt": "x"})

    assert emu.counts["submit"] == 1
    assert len(emu.submissions) == 1


async def test_a_submit_refused_503_without_request_id_is_retried(
    fal: FalClient, emu: FalEmulator, sleeps: RecordingSleep
) -> None:
    emu.inject(Fault(kind="submit", status=503))

    handle = await fal.submit(TEXT, {"prompt": "x"})

    assert emu.counts["submit"] == 2
    assert [s.request_id for s in emu.submissions] == [handle.request_id]
    assert len(sleeps.delays) == 1


async def test_a_submit_answered_503_with_request_id_is_not_retried(
    fal: FalClient, emu: FalEmulator
) -> None:
    emu.inject(Fault(kind="submit", status=503, request_id_header=True))

    with pytest.raises(FalPlatformError) as caught:
        await fal.submit(TEXT, {"prompt": "x"})

    assert emu.counts["submit"] == 1
    assert caught.value.status == 503
    assert caught.value.request_id


async def test_a_submit_rate_limited_waits_for_retry_after(
    fal: FalClient, emu: FalEmulator, sleeps: RecordingSleep
) -> None:
    emu.inject(Fault(kind="submit", status=429, retry_after=2))

    await fal.submit(TEXT, {"prompt": "x"})

    assert sleeps.delays == [2.0]
    assert len(emu.submissions) == 1


async def test_a_submit_that_cannot_connect_is_retried_then_unavailable(
    sleeps: RecordingSleep,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with FalClient(closed, closed, KEY, retry=RETRY, sleep=sleeps) as fal:
        with pytest.raises(FalUnavailable):
            await fal.submit(TEXT, {"prompt": "x"})

    assert len(sleeps.delays) == RETRY.max_attempts - 1


# -- safe calls retry transient failures -----------------------------------------------------


async def test_status_waits_out_429_with_retry_after(
    fal: FalClient, emu: FalEmulator, sleeps: RecordingSleep
) -> None:
    handle = await fal.submit(TEXT, {"prompt": "x"})
    emu.inject(Fault(kind="status", status=429, retry_after=3, times=2))

    await fal.status(handle)

    assert sleeps.delays == [3.0, 3.0]
    assert emu.counts["status"] == 3


async def test_result_retries_5xx_with_growing_backoff(
    fal: FalClient, emu: FalEmulator, sleeps: RecordingSleep
) -> None:
    await finish(fal, emu, JobScript())
    handle = fal.handle_for(TEXT, emu.submissions[-1].request_id)
    emu.inject(Fault(kind="result", status=502, times=3))

    result = await fal.result(handle)

    assert result.video.url
    assert sleeps.delays == [0.5, 1.0, 2.0]  # full jitter at its ceiling (random = 1.0)


async def test_status_retries_dropped_connections(
    fal: FalClient, emu: FalEmulator, sleeps: RecordingSleep
) -> None:
    handle = await fal.submit(TEXT, {"prompt": "x"})
    emu.inject(Fault(kind="status", reset=True, times=2))

    await fal.status(handle)

    assert emu.counts["status"] == 3


async def test_status_retries_a_read_timeout(
    make_client: Callable[..., FalClient], emu: FalEmulator
) -> None:
    async with make_client(timeouts=QUICK_READ) as fal:
        handle = await fal.submit(TEXT, {"prompt": "x"})
        emu.inject(Fault(kind="status", delay=3.0))

        await fal.status(handle)

    assert emu.counts["status"] == 2


async def test_cancel_retries_a_503(fal: FalClient, emu: FalEmulator) -> None:
    emu.script_next(JobScript(hold_in_queue=True))
    handle = await fal.submit(TEXT, {"prompt": "x"})
    emu.inject(Fault(kind="cancel", status=503))

    await fal.cancel(handle)

    assert emu.counts["cancel"] == 2


async def test_status_gives_up_after_bounded_attempts(fal: FalClient, emu: FalEmulator) -> None:
    handle = await fal.submit(TEXT, {"prompt": "x"})
    emu.inject(Fault(kind="status", status=503, times=100))

    with pytest.raises(FalPlatformError) as caught:
        await fal.status(handle)

    assert caught.value.retryable
    assert emu.counts["status"] == RETRY.max_attempts


async def test_status_unreachable_after_bounded_resets(fal: FalClient, emu: FalEmulator) -> None:
    handle = await fal.submit(TEXT, {"prompt": "x"})
    emu.inject(Fault(kind="status", reset=True, times=100))

    with pytest.raises(FalUnavailable):
        await fal.status(handle)

    assert emu.counts["status"] == RETRY.max_attempts


async def test_polling_waits_out_a_bad_patch_instead_of_losing_the_job(
    make_client: Callable[..., FalClient], emu: FalEmulator
) -> None:
    async with make_client(retry=RetryPolicy(max_attempts=2, base_delay=0.1)) as fal:
        handle = await fal.submit(TEXT, {"prompt": "x"})
        await emu.wait_for_status(handle.request_id, "COMPLETED")
        emu.inject(Fault(kind="status", status=503, times=3))

        async with asyncio.timeout(20):
            statuses = [s async for s in fal.watch(handle, poll_interval=POLL, stream=False)]

    assert isinstance(statuses[-1], Completed)
    assert emu.counts["status"] == 4


async def test_the_key_never_reaches_the_logs(
    make_client: Callable[..., FalClient], emu: FalEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.inject(Fault(kind="submit", status=503))
    async with make_client() as fal:
        handle = await fal.submit(TEXT, {"prompt": "x"})
        emu.inject(Fault(kind="status", reset=True))
        await fal.status(handle)
    async with make_client(key="other-secret-key") as wrong:
        with pytest.raises(FalAuthError):
            await wrong.status(handle)

    # The emulator's own server logs are not the client's business.
    client_lines = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("bot.emulator", "aiohttp"))
    ]
    assert client_lines  # the retries and the refusal were logged...
    assert not [line for line in client_lines if KEY in line or "other-secret-key" in line]


async def test_the_result_of_a_request_cancelled_in_queue_is_a_final_platform_error(
    fal: FalClient, emu: FalEmulator
) -> None:
    emu.script_next(JobScript(hold_in_queue=True))
    handle = await fal.submit(TEXT, {"prompt": "x"})
    await fal.cancel(handle)
    await emu.wait_for_status(handle.request_id, "COMPLETED")

    with pytest.raises(FalPlatformError) as caught:
        await fal.result(handle)

    assert caught.value.error_type == "request_cancelled"
    assert not caught.value.retryable
    assert emu.counts["result"] == 1
