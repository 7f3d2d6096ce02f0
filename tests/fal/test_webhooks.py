"""Verifying fal's webhook deliveries with a locally generated key pair, and dropping repeats."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.fal.webhooks import (
    FalWebhookKeys,
    RecentRequests,
    WebhookKeysUnavailable,
    WebhookMalformed,
    WebhookSignatureInvalid,
    WebhookStale,
    WebhookVerifier,
    jwks_url,
    parse_jwks,
    public_jwk,
)

NOW = 1_750_000_000.0
JWKS = "https://rest.example/.well-known/jwks.json"
REQUEST_ID = "0f6e7a52-6a3c-4b43-9d3c-2b5f0d2c9a11"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class JwksServer:
    """fal's JWKS endpoint as an httpx transport: serves the public halves of `keys`."""

    def __init__(self, *keys: Ed25519PrivateKey) -> None:
        self.keys = list(keys)
        self.requests = 0
        self.status = 200
        self.fail_connect = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS
        self.requests += 1
        if self.fail_connect:
            raise httpx.ConnectError("refused", request=request)
        document = {
            "keys": [public_jwk(k.public_key(), kid=str(i)) for i, k in enumerate(self.keys)]
        }
        return httpx.Response(self.status, json=document)


def sign(
    key: Ed25519PrivateKey,
    body: bytes,
    *,
    request_id: str = REQUEST_ID,
    user_id: str = "user-1",
    timestamp: float = NOW,
) -> dict[str, str]:
    """The headers fal sends with a delivery, signed the way fal documents it."""
    stamp = str(int(timestamp))
    message = "\n".join([request_id, user_id, stamp, hashlib.sha256(body).hexdigest()])
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": user_id,
        "X-Fal-Webhook-Timestamp": stamp,
        "X-Fal-Webhook-Signature": key.sign(message.encode("utf-8")).hex(),
    }


def delivery(status: str = "OK", request_id: str = REQUEST_ID, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "request_id": request_id,
        "gateway_request_id": request_id,
        "status": status,
        "payload": {"video": {"url": "https://v3.fal.media/files/x/out.mp4"}},
        **extra,
    }
    return json.dumps(body).encode()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(key: Ed25519PrivateKey) -> JwksServer:
    return JwksServer(key)


@pytest.fixture
async def keys(server: JwksServer, clock: Clock) -> FalWebhookKeys:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
    return FalWebhookKeys(http, JWKS, clock=clock)


@pytest.fixture
def verifier(keys: FalWebhookKeys, clock: Clock) -> WebhookVerifier:
    return WebhookVerifier(keys, clock=clock)


async def test_a_delivery_signed_by_fals_key_is_accepted_and_read(
    verifier: WebhookVerifier, key: Ed25519PrivateKey
) -> None:
    body = delivery()
    event = await verifier.verify(sign(key, body), body)
    assert event.request_id == REQUEST_ID
    assert event.ok
    assert event.user_id == "user-1"
    assert event.timestamp == int(NOW)
    assert event.gateway_request_id == REQUEST_ID
    assert event.payload == {"video": {"url": "https://v3.fal.media/files/x/out.mp4"}}
    assert event.error is None


async def test_an_error_delivery_is_read_as_not_ok_with_its_error(
    verifier: WebhookVerifier, key: Ed25519PrivateKey
) -> None:
    body = delivery("ERROR", error="Invalid status code: 422", payload={"detail": []})
    event = await verifier.verify(sign(key, body), body)
    assert not event.ok
    assert event.error == "Invalid status code: 422"
    assert event.payload == {"detail": []}


async def test_header_names_are_matched_whatever_their_case(
    verifier: WebhookVerifier, key: Ed25519PrivateKey
) -> None:
    body = delivery()
    headers = {name.lower(): value for name, value in sign(key, body).items()}
    assert (await verifier.verify(headers, body)).request_id == REQUEST_ID


async def test_a_delivery_signed_by_another_key_is_refused(verifier: WebhookVerifier) -> None:
    body = delivery()
    with pytest.raises(WebhookSignatureInvalid, match="not signed by any of fal's keys"):
        await verifier.verify(sign(Ed25519PrivateKey.generate(), body), body)


async def test_a_tampered_body_is_refused(
    verifier: WebhookVerifier, key: Ed25519PrivateKey
) -> None:
    headers = sign(key, delivery())
    forged = delivery(payload={"video": {"url": "https://evil.example/x.mp4"}})
    with pytest.raises(WebhookSignatureInvalid):
        await verifier.verify(headers, forged)


async def test_a_changed_header_is_refused(
    verifier: WebhookVerifier, key: Ed25519PrivateKey
) -> None:
    body = delivery()
    headers = sign(key, body) | {"X-Fal-Webhook-User-Id": "someone-else"}
    with pytest.raises(WebhookSignatureInvalid):
        await verifier.verify(headers, body)


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86400])
async def test_a_delivery_more_than_300_s_off_the_clock_is_refused_as_stale(
    verifier: WebhookVerifier, key: Ed25519PrivateKey, server: JwksServer, offset: int
) -> None:
    body = delivery()
    with pytest.raises(WebhookStale, match="at most 300 s"):
        await verifier.verify(sign(key, body, timestamp=NOW + offset), body)
    assert server.requests == 0, "a replay must not cost a key fetch"


@pytest.mark.parametrize("offset", [-300, 300])
async def test_a_delivery_just_inside_the_window_is_accepted(
    verifier: WebhookVerifier, key: Ed25519PrivateKey, offset: int
) -> None:
    body = delivery()
    assert (await verifier.verify(sign(key, body, timestamp=NOW + offset), body)).ok


async def test_a_key_fal_rotated_in_is_found_by_fetching_the_keys_once_more(
    verifier: WebhookVerifier, key: Ed25519PrivateKey, server: JwksServer, clock: Clock
) -> None:
    body = delivery()
    await verifier.verify(sign(key, body), body)
    assert server.requests == 1
    rotated = Ed25519PrivateKey.generate()
    server.keys = [rotated, key]
    clock.now += 120
    event = await verifier.verify(sign(rotated, body, timestamp=clock.now), body)
    assert event.ok
    assert server.requests == 2
    # The new key is cached now: no more fetches for it.
    await verifier.verify(sign(rotated, body, timestamp=clock.now), body)
    assert server.requests == 2


async def test_forged_deliveries_cost_at_most_one_key_fetch_a_minute(
    verifier: WebhookVerifier, key: Ed25519PrivateKey, server: JwksServer, clock: Clock
) -> None:
    body = delivery()
    await verifier.verify(sign(key, body), body)
    forger = Ed25519PrivateKey.generate()
    for _ in range(5):
        with pytest.raises(WebhookSignatureInvalid):
            await verifier.verify(sign(forger, body), body)
    assert server.requests == 1
    clock.now += 61
    with pytest.raises(WebhookSignatureInvalid):
        await verifier.verify(sign(forger, body, timestamp=clock.now), body)
    assert server.requests == 2


async def test_the_keys_are_kept_for_a_day_then_fetched_again(
    keys: FalWebhookKeys, server: JwksServer, clock: Clock
) -> None:
    first = await keys.current()
    clock.now += 23 * 3600
    assert await keys.current() == first
    assert server.requests == 1
    clock.now += 3600
    await keys.current()
    assert server.requests == 2


async def test_without_fals_keys_no_delivery_can_be_verified(
    verifier: WebhookVerifier, key: Ed25519PrivateKey, server: JwksServer
) -> None:
    server.status = 503
    body = delivery()
    with pytest.raises(WebhookKeysUnavailable, match="HTTP 503"):
        await verifier.verify(sign(key, body), body)
    server.status = 200
    server.fail_connect = True
    with pytest.raises(WebhookKeysUnavailable):
        await verifier.verify(sign(key, body), body)


async def test_an_unreachable_jwks_is_not_asked_again_within_a_minute(
    keys: FalWebhookKeys, server: JwksServer, clock: Clock
) -> None:
    server.fail_connect = True
    for _ in range(3):
        with pytest.raises(WebhookKeysUnavailable, match="ConnectError"):
            await keys.current()
    assert server.requests == 1
    clock.now += 60
    server.fail_connect = False
    assert len(await keys.current()) == 1
    assert server.requests == 2


async def test_old_keys_stay_in_use_while_a_refresh_fails(
    verifier: WebhookVerifier,
    keys: FalWebhookKeys,
    key: Ed25519PrivateKey,
    server: JwksServer,
    clock: Clock,
) -> None:
    await keys.current()
    server.fail_connect = True
    clock.now += 25 * 3600
    body = delivery()
    assert (await verifier.verify(sign(key, body, timestamp=clock.now), body)).ok
    assert server.requests == 2


@pytest.mark.parametrize(
    "change",
    [
        {"X-Fal-Webhook-Signature": None},
        {"X-Fal-Webhook-Request-Id": None},
        {"X-Fal-Webhook-User-Id": None},
        {"X-Fal-Webhook-Timestamp": None},
        {"X-Fal-Webhook-Timestamp": "yesterday"},
        {"X-Fal-Webhook-Signature": "not-hex"},
    ],
)
async def test_missing_or_unreadable_headers_are_malformed(
    verifier: WebhookVerifier, key: Ed25519PrivateKey, change: dict[str, str | None]
) -> None:
    body = delivery()
    headers: dict[str, str] = {}
    for name, value in (sign(key, body) | change).items():
        if value is not None:
            headers[name] = value
    with pytest.raises(WebhookMalformed):
        await verifier.verify(headers, body)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        delivery(request_id="another-request"),
        delivery(status="IN_PROGRESS"),
    ],
)
async def test_a_signed_body_fal_would_not_send_is_malformed(
    verifier: WebhookVerifier, key: Ed25519PrivateKey, body: bytes
) -> None:
    with pytest.raises(WebhookMalformed):
        await verifier.verify(sign(key, body), body)


def test_the_jwks_keeps_only_ed25519_keys_and_skips_broken_ones(key: Ed25519PrivateKey) -> None:
    good = public_jwk(key.public_key())
    document = {
        "keys": [
            {"kty": "RSA", "n": "abc", "e": "AQAB"},
            {"kty": "OKP", "crv": "X25519", "x": good["x"]},
            {"kty": "OKP", "crv": "Ed25519", "x": "!!"},
            {"kty": "OKP", "crv": "Ed25519", "x": "c2hvcnQ"},
            "nonsense",
            good,
        ]
    }
    [parsed] = parse_jwks(document)
    assert parsed.public_bytes_raw() == key.public_key().public_bytes_raw()
    assert parse_jwks({"no": "keys"}) == ()
    assert parse_jwks([]) == ()


def test_the_jwks_lives_under_fals_rest_url() -> None:
    assert jwks_url("https://rest.fal.ai/") == "https://rest.fal.ai/.well-known/jwks.json"


def test_a_request_id_is_new_once_and_the_oldest_are_forgotten() -> None:
    seen = RecentRequests(size=2)
    assert seen.add("a")
    assert not seen.add("a")
    assert seen.add("b")
    assert seen.add("c")
    assert "a" not in seen
    assert "b" in seen
    assert "c" in seen
    assert len(seen) == 2
