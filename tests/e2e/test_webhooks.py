"""fal webhooks end to end: the emulator's signed callback wakes the job; without it, the
stream and polling still deliver."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter

import httpx

from bot.emulator import JobScript
from bot.store import LedgerKind
from tests.e2e.conftest import World, job_id_of


class ObservedCounts(Counter[str]):
    """The emulator's request counts, which also wake a test waiting for one to grow."""

    def __init__(self) -> None:
        super().__init__()
        self.grew = asyncio.Event()

    def __setitem__(self, kind: str, count: int) -> None:
        super().__setitem__(kind, count)
        self.grew.set()

    async def reached(self, kind: str, count: int) -> None:
        async with asyncio.timeout(20):
            while self[kind] < count:
                self.grew.clear()
                await self.grew.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def with_webhooks(world: World, **settings: object) -> tuple[str, ObservedCounts]:
    """Restart the bot receiving fal's webhooks on a local port; the webhook URL and counts."""
    await world.stop()
    port = free_port()
    url = f"http://127.0.0.1:{port}/fal/webhook"
    world.overrides.update(fal_webhook_url=url, fal_webhook_port=port, **settings)
    counts = ObservedCounts()
    world.fal.counts = counts
    await world.start()
    return url, counts


async def test_a_webhook_delivers_the_job_when_the_stream_breaks_and_polling_is_slow(
    world: World,
) -> None:
    # Polls 300 s apart and a status stream that drops before its first event: without the
    # webhook, nothing would reach the member within the test's time.
    url, counts = await with_webhooks(world, progress_interval=300)
    world.fal.script_next(JobScript(hold_in_progress=True, stream_break_after=0, webhook_copies=2))
    await world.command("pika text", {"prompt": "a lighthouse at night", "seed": 5})
    submission = await world.submission()
    assert submission.webhook_url == url
    request_id = submission.request_id
    await world.fal.wait_for_status(request_id, "IN_PROGRESS")
    await counts.reached("status", 1)  # the stream is given up; the next poll is far away
    await world.fal.advance(request_id)

    [post] = await world.wait_for(world.posts)
    job = await world.job(job_id_of(post))
    assert job.state == "delivered"
    assert job.fal_request_id == request_id
    deliveries = await world.fal.webhooks_sent(request_id)
    assert [d.status for d in deliveries] == [200, 200]
    # One poll before the webhook, one status check after it: the webhook woke the job.
    assert counts["status"] == 2
    assert counts["result"] == 1
    assert len(world.posts()) == 1
    assert world.bot is not None
    assert world.store is not None
    kinds = [entry.kind for entry in await world.store.ledger.for_job(job.id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.SETTLE]


async def test_a_job_whose_webhook_never_comes_is_delivered_by_the_stream(world: World) -> None:
    _, counts = await with_webhooks(world)
    world.fal.script_next(JobScript(webhook_copies=0))
    await world.command("pika text", {"prompt": "waves", "seed": 6})
    [post] = await world.wait_for(world.posts)
    job = await world.job(job_id_of(post))
    assert job.state == "delivered"
    assert counts["webhook"] == 0
    assert len(world.posts()) == 1


async def test_a_forged_webhook_is_refused_and_only_fals_own_wakes_the_job(world: World) -> None:
    url, counts = await with_webhooks(world, progress_interval=300)
    world.fal.script_next(JobScript(hold_in_progress=True, stream_break_after=0))
    assert world.bot is not None
    jobs = world.bot.jobs
    woken: list[str] = []
    original = jobs.fal_webhook

    def spy(request_id: str) -> bool:
        woken.append(request_id)
        return original(request_id)

    jobs.fal_webhook = spy  # type: ignore[method-assign]
    await world.command("pika text", {"prompt": "fog", "seed": 7})
    request_id = (await world.submission()).request_id
    await world.fal.wait_for_status(request_id, "IN_PROGRESS")
    await counts.reached("status", 1)

    body = json.dumps({"request_id": request_id, "status": "OK", "payload": None}).encode()
    headers = {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "someone",
        "X-Fal-Webhook-Timestamp": str(int(time.time())),
        "X-Fal-Webhook-Signature": "00" * 64,
    }
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.post(url, content=body, headers=headers)
    assert response.status_code == 401
    assert woken == []

    await world.fal.advance(request_id)
    [post] = await world.wait_for(world.posts)
    assert (await world.job(job_id_of(post))).state == "delivered"
    assert woken == [request_id]
