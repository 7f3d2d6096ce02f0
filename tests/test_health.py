"""The health and metrics endpoint: /healthz verdicts and /metrics in Prometheus text format."""

from __future__ import annotations

import socket
import sqlite3
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from bot.health import HealthServer
from bot.metrics import CONTENT_TYPE, Counter, Gauge, Histogram, Metrics, render
from tests.e2e.conftest import World, job_id_of
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
    server = HealthServer(world.bot, port=0)
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

    monkeypatch.setattr(world.bot.store, "set_meta", refuse)
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


def test_counters_and_gauges_render_in_the_text_format() -> None:
    counter = Counter("x_total", "Things.", ("kind",))
    counter.inc("a")
    counter.inc("a")
    counter.inc('say "hi"\\\n')
    gauge = Gauge("y", "Level.")
    gauge.set(2.5)
    assert render([counter, gauge]) == (
        "# HELP x_total Things.\n"
        "# TYPE x_total counter\n"
        'x_total{kind="a"} 2\n'
        'x_total{kind="say \\"hi\\"\\\\\\n"} 1\n'
        "# HELP y Level.\n"
        "# TYPE y gauge\n"
        "y 2.5\n"
    )


def test_histograms_are_cumulative_with_sum_and_count() -> None:
    histogram = Histogram("t_seconds", "Time.", ("call",), buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 5.0):
        histogram.observe(value, "submit")
    lines = render([histogram]).splitlines()
    assert lines[2:] == [
        't_seconds_bucket{call="submit",le="0.1"} 1',
        't_seconds_bucket{call="submit",le="1"} 2',
        't_seconds_bucket{call="submit",le="+Inf"} 3',
        't_seconds_sum{call="submit"} 5.55',
        't_seconds_count{call="submit"} 3',
    ]


def test_a_wrong_number_of_labels_is_refused() -> None:
    with pytest.raises(ValueError, match="takes labels"):
        Metrics().deliveries.inc("channel", "extra")
