"""The emulator's callbacks: a completed job's result POSTed to its fal_webhook, signed like fal's
with Ed25519, tried again a few times when refused; the public keys at /.well-known/jwks.json."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.emulator.jobs import Job, WebhookDelivery

if TYPE_CHECKING:
    from bot.emulator.server import FalEmulator

WEBHOOK_USER_ID = "emulator-user"
WEBHOOK_TIMEOUT_SECONDS = 10.0


class Webhooks:
    """Sends each completed job's callbacks (the keys and the records stay on the emulator)."""

    def __init__(self, emulator: FalEmulator) -> None:
        self._em = emulator

    def start(self, job: Job) -> None:
        """Send the job's callbacks in the background, if it asked for any."""
        if job.webhook_url is not None and job.script.webhook_copies > 0:
            self._em._webhook_tasks[job.request_id] = asyncio.create_task(
                self._send(job, job.webhook_url),
                name=f"fal-emulator-webhook-{job.request_id}",
            )

    def _body(self, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": job.request_id,
            "gateway_request_id": job.request_id,
            "status": "OK" if job.result_status == 200 else "ERROR",
            "payload": job.result_body,
        }
        if job.result_status != 200:
            body["error"] = f"Invalid status code: {job.result_status}"
        return body

    async def _send(self, job: Job, url: str) -> None:
        body = json.dumps(self._body(job)).encode()
        for _ in range(job.script.webhook_copies):
            for attempt in range(1, self._em.webhook_attempts + 1):
                delivery = await self._post(job.request_id, url, body, attempt)
                self._em.webhook_deliveries.append(delivery)
                if delivery.ok or self._em._closing.is_set():
                    break
                await self._em._sleep(0.2 * attempt)

    async def _post(self, request_id: str, url: str, body: bytes, attempt: int) -> WebhookDelivery:
        self._em.counts["webhook"] += 1
        timestamp = str(int(time.time()))
        digest = hashlib.sha256(body).hexdigest()
        message = "\n".join([request_id, WEBHOOK_USER_ID, timestamp, digest]).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": WEBHOOK_USER_ID,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": self._em._webhook_keys[0].sign(message).hex(),
        }
        try:
            async with self._em._client().post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS),
            ) as response:
                await response.read()
                return WebhookDelivery(request_id, url, attempt, status=response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return WebhookDelivery(request_id, url, attempt, error=type(exc).__name__)

    async def jwks(self, request: web.Request) -> web.StreamResponse:
        self._em.counts["jwks"] += 1
        return web.json_response(self._em.jwks())


def jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    raw = key.public_key().public_bytes_raw()
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
        "kid": hashlib.sha256(raw).hexdigest()[:16],
        "use": "sig",
        "alg": "EdDSA",
    }
