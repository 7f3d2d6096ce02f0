"""The health and metrics endpoint: /healthz verdicts and /metrics in Prometheus text format."""

from __future__ import annotations

import socket
import sqlite3
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest

from bot.app import BotHealth
from bot.fal import FalAuthError
from bot.ops.health import HealthServer
from bot.ops.metrics import CONTENT_TYPE, Metrics
from tests.e2e.conftest import World, job_id_of
from tests.e2e.conftest import postgres_server as postgres_server  # world needs it
from tests.e2e.conftest import world as world  # the end-to-end fixture, used here too


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value for every sample line of a Prometheus text page."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


@pytest.fixture
async def health(world: World) -> Any:
    assert world.bot is not None
    server = HealthServer(BotHealth(world.bot), port=0)
    await server.start()
    yield server
    await server.close()


async def test_the_endpoint_starts_with_the_bot_when_a_port_is_set(world: World) -> None:
    await world.stop()
    port = free_port()
    world.overrides["http_port"] = port
    await world.start()
    assert world.bot is not None
    assert world.bot.health is not None
    response = await get(f"http://127.0.0.1:{port}/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "checks": {"gateway": True, "database": True, "jobs": True},
        "failed": {},
    }
    await world.stop()
    with pytest.raises(httpx.ConnectError):
        await get(f"http://127.0.0.1:{port}/healthz")
    world.overrides.pop("http_port")
    await world.start()


async def test_the_endpoint_is_off_by_default(world: World) -> None:
    assert world.bot is not None
    assert world.settings.http_port is None
    assert world.bot.health is None


async def test_healthz_names_a_stopped_job_runner(world: World, health: HealthServer) -> None:
    assert world.bot is not None
    await world.bot.jobs.close()
    response = await get(f"{health.url}/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["checks"] == {"gateway": True, "database": True, "jobs": False}
    assert "scheduler" in body["failed"]["jobs"]


async def test_healthz_names_an_unwritable_database(
    world: World, health: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert world.bot is not None

    async def refuse(key: str, value: str) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(world.bot.store.meta, "set", refuse)
    response = await get(f"{health.url}/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] is False
    assert "readonly" in response.json()["failed"]["database"]


async def test_healthz_names_a_lost_gateway(
    world: World, health: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert world.bot is not None
    # A closed socket as discord.py holds it while reconnecting (a real drop reconnects at once
    # against the local fake, too fast to observe without a race).
    monkeypatch.setattr(world.bot, "ws", SimpleNamespace(open=False))
    response = await get(f"{health.url}/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["gateway"] is False


async def test_metrics_count_a_delivered_job(world: World, health: HealthServer) -> None:
    await world.command("pika text", {"prompt": "a lighthouse at dusk", "seed": 7})
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    job = await world.job(job_id_of(post))
    assert job.state == "delivered"

    response = await get(f"{health.url}/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE
    found = samples(response.text)
    assert found['pikabot_jobs{mode="text",state="delivered"}'] == 1
    assert found['pikabot_deliveries_total{path="channel"}'] == 1
    assert found['pikabot_job_endings_total{mode="text",state="delivered"}'] == 1
    assert found['pikabot_fal_request_seconds_count{call="submit"}'] == 1
    assert found['pikabot_fal_request_seconds_count{call="result"}'] == 1
    assert found["pikabot_queue_waiting"] == 0
    assert found["pikabot_queue_at_fal"] == 0
    assert found["pikabot_fal_concurrency"] == world.settings.fal_concurrency
    spent = [v for k, v in found.items() if k.startswith("pikabot_credits_spent{day=")]
    assert spent == [job.cost]
    assert found['pikabot_discord_requests_total{status="2xx"}'] > 0
    assert "# TYPE pikabot_fal_request_seconds histogram" in response.text


async def test_metrics_count_fal_errors_by_type(world: World, health: HealthServer) -> None:
    world.fal.remove_endpoint("fal-ai/pika/v2.5/text-to-video")
    await world.command("pika text", {"prompt": "a lighthouse at dusk", "seed": 7})
    await world.wait_for(lambda: world.fal.counts["submit"] >= 1)
    jobs = await world.jobs()
    ended = await world.job(jobs[0].id)
    assert ended.state == "failed"
    found = samples((await get(f"{health.url}/metrics")).text)
    assert found['pikabot_fal_errors_total{call="submit",type="not_found_endpoint"}'] == 1
    assert found['pikabot_job_endings_total{mode="text",state="failed"}'] == 1


async def test_metrics_count_discord_rate_limits(world: World, health: HealthServer) -> None:
    assert world.bot is not None
    world.fake.fail_next("GET", "/users/*", 429, retry_after=0.01)
    user = await world.bot.fetch_user(world.fake.member.id)
    assert user.id == world.fake.member.id
    found = samples((await get(f"{health.url}/metrics")).text)
    assert found['pikabot_discord_rate_limited_total{scope="user"}'] == 1
    assert found['pikabot_discord_requests_total{status="4xx"}'] >= 1


def test_label_values_are_escaped_in_the_text_format() -> None:
    metrics = Metrics()
    metrics.delivered("channel")
    metrics.delivered("channel")
    metrics.fal_failed("model", 'say "hi"\\\n')
    found = samples(metrics.exposition().decode())
    assert found['pikabot_deliveries_total{path="channel"}'] == 2
    assert found['pikabot_fal_errors_total{call="model",type="say \\"hi\\"\\\\\\n"}'] == 1
    assert "# TYPE pikabot_deliveries_total counter" in metrics.exposition().decode()


def test_fal_latency_is_a_cumulative_histogram_with_sum_and_count() -> None:
    metrics = Metrics()
    for value in (0.07, 0.3, 500.0):
        metrics.fal_latency.labels("submit").observe(value)
    found = samples(metrics.exposition().decode())
    bucket = 'pikabot_fal_request_seconds_bucket{call="submit",le="%s"}'
    assert found[bucket % "0.05"] == 0
    assert found[bucket % "0.1"] == 1
    assert found[bucket % "0.5"] == 2
    assert found[bucket % "120.0"] == 2
    assert found[bucket % "+Inf"] == 3
    assert found['pikabot_fal_request_seconds_sum{call="submit"}'] == pytest.approx(500.37)
    assert found['pikabot_fal_request_seconds_count{call="submit"}'] == 3


def test_a_failed_fal_call_is_timed_and_counted_by_kind() -> None:
    metrics = Metrics()
    with pytest.raises(FalAuthError), metrics.fal_call("submit"):
        raise FalAuthError(status=401)
    found = samples(metrics.exposition().decode())
    assert found['pikabot_fal_errors_total{call="submit",type="auth"}'] == 1
    assert found['pikabot_fal_request_seconds_count{call="submit"}'] == 1


def test_two_bots_in_one_process_count_apart() -> None:
    first, second = Metrics(), Metrics()
    first.delivered("dm")
    assert samples(first.exposition().decode())['pikabot_deliveries_total{path="dm"}'] == 1
    assert 'path="dm"' not in second.exposition().decode()
    assert b"pikabot_deliveries_total" not in generate_latest(REGISTRY)


async def test_one_bot_takes_one_scrape_time_collector(world: World, health: HealthServer) -> None:
    assert world.bot is not None
    second = HealthServer(BotHealth(world.bot), port=0)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        await second.start()
    await second.close()
    found = samples((await get(f"{health.url}/metrics")).text)
    assert found["pikabot_credits_daily_budget"] == world.settings.global_daily_budget


def test_a_wrong_number_of_labels_is_refused() -> None:
    with pytest.raises(ValueError, match="takes labels"):
        Metrics().deliveries.inc("channel", "extra")
