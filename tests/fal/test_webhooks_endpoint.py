"""The webhook endpoint over real HTTP, and the emulator's signed callbacks reaching it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.config import ConfigError, load_settings
from bot.emulator import FalEmulator, JobScript
from bot.fal.webhooks import FalWebhookKeys, WebhookEvent, WebhookVerifier, jwks_url
from bot.ops.webhooks import WEBHOOK_PATH, WebhookReceiver, WebhookServer

from .fal_support import KEY
from .test_webhooks import REQUEST_ID, JwksServer, delivery, sign

TEXT_TO_VIDEO = "fal-ai/pika/v2.2/text-to-video"


@dataclass
class Endpoint:
    """A running webhook server and what it handed on."""

    server: WebhookServer
    http: httpx.AsyncClient
    jwks: JwksServer
    events: list[WebhookEvent] = field(default_factory=list)

    async def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.http.post(self.server.url, content=body, headers=headers)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
async def endpoint(key: Ed25519PrivateKey) -> AsyncIterator[Endpoint]:
    jwks = JwksServer(key)
    keys_http = httpx.AsyncClient(transport=httpx.MockTransport(jwks.handler))
    keys = FalWebhookKeys(keys_http, "https://rest.example/.well-known/jwks.json")
    events: list[WebhookEvent] = []
    server = WebhookServer(WebhookReceiver(WebhookVerifier(keys), events.append))
    await server.start()
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            yield Endpoint(server, http, jwks, events)
    finally:
        await server.close()
        await keys_http.aclose()


async def test_a_signed_delivery_is_answered_200_and_handed_on(
    endpoint: Endpoint, key: Ed25519PrivateKey
) -> None:
    body = delivery()
    response = await endpoint.post(body, sign(key, body, timestamp=time.time()))
    assert response.status_code == 200
    assert [e.request_id for e in endpoint.events] == [REQUEST_ID]


async def test_a_repeated_delivery_is_answered_200_but_handed_on_once(
    endpoint: Endpoint, key: Ed25519PrivateKey
) -> None:
    body = delivery()
    for _ in range(3):
        response = await endpoint.post(body, sign(key, body, timestamp=time.time()))
        assert response.status_code == 200
    assert len(endpoint.events) == 1


async def test_a_forged_delivery_is_answered_401_and_ignored(endpoint: Endpoint) -> None:
    body = delivery()
    forged = sign(Ed25519PrivateKey.generate(), body, timestamp=time.time())
    response = await endpoint.post(body, forged)
    assert response.status_code == 401
    assert "not signed" in response.json()["detail"]
    assert endpoint.events == []


async def test_a_stale_delivery_is_answered_400_and_ignored(
    endpoint: Endpoint, key: Ed25519PrivateKey
) -> None:
    body = delivery()
    response = await endpoint.post(body, sign(key, body, timestamp=time.time() - 600))
    assert response.status_code == 400
    assert endpoint.events == []


async def test_a_delivery_without_fals_headers_is_answered_400(endpoint: Endpoint) -> None:
    response = await endpoint.post(delivery(), {"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "X-Fal-Webhook-Signature" in response.json()["detail"]
    assert endpoint.events == []


async def test_deliveries_are_answered_503_while_fals_keys_cannot_be_fetched(
    endpoint: Endpoint, key: Ed25519PrivateKey
) -> None:
    endpoint.jwks.status = 500
    body = delivery()
    response = await endpoint.post(body, sign(key, body, timestamp=time.time()))
    assert response.status_code == 503
    assert endpoint.events == []


async def test_a_forged_repeat_does_not_count_as_the_first_delivery(
    endpoint: Endpoint, key: Ed25519PrivateKey
) -> None:
    body = delivery()
    forged = sign(Ed25519PrivateKey.generate(), body, timestamp=time.time())
    assert (await endpoint.post(body, forged)).status_code == 401
    assert (await endpoint.post(body, sign(key, body, timestamp=time.time()))).status_code == 200
    assert len(endpoint.events) == 1


async def test_only_post_on_the_webhook_path_is_served(endpoint: Endpoint) -> None:
    base = endpoint.server.url.removesuffix(WEBHOOK_PATH)
    assert (await endpoint.http.get(endpoint.server.url)).status_code == 405
    assert (await endpoint.http.post(base + "/metrics")).status_code == 404


# -- the emulator's callbacks, verified against the keys it publishes ---------------------------

Setup = tuple[FalEmulator, WebhookServer, list[WebhookEvent]]


@pytest.fixture
async def emulator_and_endpoint() -> AsyncIterator[Setup]:
    """The emulator, and a webhook endpoint trusting the keys the emulator publishes."""
    events: list[WebhookEvent] = []
    async with FalEmulator(key=KEY) as emu, httpx.AsyncClient(timeout=5) as http:
        # No minimum between fetches: the rotation test looks the new key up at once.
        keys = FalWebhookKeys(http, jwks_url(emu.base_url), min_refetch_seconds=0)
        server = WebhookServer(WebhookReceiver(WebhookVerifier(keys), events.append))
        await server.start()
        try:
            yield emu, server, events
        finally:
            await server.close()


async def submit(emu: FalEmulator, webhook_url: str | None) -> str:
    params = {"fal_webhook": webhook_url} if webhook_url else {}
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.post(
            f"{emu.base_url}/{TEXT_TO_VIDEO}",
            params=params,
            json={"prompt": "a lighthouse"},
            headers={"Authorization": f"Key {KEY}"},
        )
    response.raise_for_status()
    return str(response.json()["request_id"])


async def test_the_emulator_signs_its_callbacks_so_the_bots_verifier_accepts_them(
    emulator_and_endpoint: Setup,
) -> None:
    emu, server, events = emulator_and_endpoint
    emu.script_next(JobScript(webhook_copies=2))
    request_id = await submit(emu, server.url)
    deliveries = await emu.webhooks_sent(request_id)
    assert [d.status for d in deliveries] == [200, 200]
    [event] = events
    assert event.request_id == request_id
    assert event.ok
    assert event.payload["video"]["content_type"] == "video/mp4"
    assert emu.counts["jwks"] == 1


async def test_the_emulator_reports_a_failed_job_as_an_error_callback(
    emulator_and_endpoint: Setup,
) -> None:
    emu, server, events = emulator_and_endpoint
    emu.script_next(JobScript(outcome="model_error"))
    request_id = await submit(emu, server.url)
    [sent] = await emu.webhooks_sent(request_id)
    assert sent.ok
    [event] = events
    assert not event.ok
    assert event.error == "Invalid status code: 422"
    assert event.payload["detail"][0]["type"] == "content_policy_violation"


async def test_after_the_emulator_rotates_its_key_the_verifier_fetches_the_new_one(
    emulator_and_endpoint: Setup,
) -> None:
    emu, server, events = emulator_and_endpoint
    first = await submit(emu, server.url)
    assert [d.status for d in await emu.webhooks_sent(first)] == [200]
    emu.rotate_webhook_key()
    second = await submit(emu, server.url)
    assert [d.status for d in await emu.webhooks_sent(second)] == [200]
    assert [e.request_id for e in events] == [first, second]
    assert emu.counts["jwks"] == 2


async def test_a_refused_callback_is_tried_again_then_given_up(
    emulator_and_endpoint: Setup,
) -> None:
    emu, server, events = emulator_and_endpoint
    emu.webhook_attempts = 2
    request_id = await submit(emu, server.url.removesuffix(WEBHOOK_PATH) + "/elsewhere")
    assert [d.status for d in await emu.webhooks_sent(request_id)] == [404, 404]
    assert events == []


async def test_lost_callbacks_are_not_sent(emulator_and_endpoint: Setup) -> None:
    emu, server, events = emulator_and_endpoint
    emu.script_next(JobScript(webhook_copies=0))
    request_id = await submit(emu, server.url)
    await emu.wait_for_status(request_id, "COMPLETED")
    assert await emu.webhooks_sent(request_id) == []
    assert events == []


async def test_a_submit_without_fal_webhook_gets_no_callback(emulator_and_endpoint: Setup) -> None:
    emu, _, events = emulator_and_endpoint
    request_id = await submit(emu, None)
    await emu.wait_for_status(request_id, "COMPLETED")
    assert await emu.webhooks_sent(request_id) == []
    assert emu.counts["webhook"] == 0
    assert events == []


# -- the setting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://bot.example.com/fal/webhook",
        "http://127.0.0.1:8091/fal/webhook",
        "http://localhost:8091/fal/webhook",
        "http://[::1]:8091/fal/webhook",
    ],
)
def test_the_webhook_url_is_https_or_this_machine(url: str) -> None:
    assert load_settings(fal_webhook_url=url).fal_webhook_url == url


@pytest.mark.parametrize(
    "url", ["http://bot.example.com/fal/webhook", "http://127.0.0.1.example.com/", "ftp://x/"]
)
def test_a_plain_http_webhook_url_elsewhere_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="PIKABOT_FAL_WEBHOOK_URL: must be a public https://"):
        load_settings(fal_webhook_url=url)
