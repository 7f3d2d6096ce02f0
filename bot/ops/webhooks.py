"""The endpoint fal's webhooks reach: verifies each delivery and wakes the job it is about.

It listens on its own port (PIKABOT_FAL_WEBHOOK_PORT), apart from /healthz and /metrics, so an
operator's reverse proxy can publish it to fal without publishing the metrics. The delivery only
wakes the job: the runner then asks fal's queue for the status and the result itself, so nothing
in a delivery's payload (such as a video URL) is trusted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx
from aiohttp import web

from bot.config import Settings
from bot.fal.webhooks import (
    FalWebhookKeys,
    RecentRequests,
    WebhookError,
    WebhookEvent,
    WebhookKeysUnavailable,
    WebhookMalformed,
    WebhookSignatureInvalid,
    WebhookStale,
    WebhookVerifier,
    jwks_url,
)
from bot.ops.listener import Listener

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/fal/webhook"
# fal's deliveries carry a small JSON document; anything bigger is not from fal.
MAX_BODY_BYTES = 1024 * 1024


class WebhookReceiver:
    """Answers fal's deliveries: 200 when verified (repeats too), 401 forged, 400 stale or
    malformed, 503 when fal's keys cannot be fetched (fal then delivers again later)."""

    def __init__(
        self,
        verifier: WebhookVerifier,
        on_event: Callable[[WebhookEvent], object],
        *,
        seen: RecentRequests | None = None,
    ) -> None:
        self._verifier = verifier
        self._on_event = on_event
        self.seen = seen if seen is not None else RecentRequests()

    def add_routes(self, app: web.Application, path: str = WEBHOOK_PATH) -> None:
        """Serve deliveries on `path` of this aiohttp app."""
        app.router.add_post(path, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        """One delivery from fal."""
        body = await request.read()
        try:
            event = await self._verifier.verify(request.headers, body)
        except WebhookError as error:
            status = _status_for(error)
            log.warning("fal webhook refused (HTTP %d): %s", status, error)
            return web.json_response({"detail": str(error)}, status=status)
        if event.request_id not in self.seen:
            self._on_event(event)
            self.seen.add(event.request_id)
            log.info("fal webhook for %s: %s", event.request_id, "OK" if event.ok else "ERROR")
        else:
            log.debug("fal webhook for %s repeated; already handled", event.request_id)
        return web.json_response({"ok": True})


def _status_for(error: WebhookError) -> int:
    if isinstance(error, WebhookSignatureInvalid):
        return 401
    if isinstance(error, WebhookKeysUnavailable):
        return 503
    if isinstance(error, WebhookStale | WebhookMalformed):
        return 400
    return 400  # pragma: no cover - every WebhookError is named above


class WebhookServer:
    """A small aiohttp server with only the webhook route."""

    def __init__(
        self, receiver: WebhookReceiver, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.receiver = receiver
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        receiver.add_routes(app)
        self._listener = Listener(app, host=host, port=port, what="fal webhooks received")

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when started with port 0)."""
        return self._listener.port

    @property
    def url(self) -> str:
        """Where it receives deliveries locally, e.g. http://127.0.0.1:8091/fal/webhook."""
        return f"{self._listener.base_url}{WEBHOOK_PATH}"

    async def start(self) -> None:
        """Start listening."""
        await self._listener.start()

    async def close(self) -> None:
        """Stop listening."""
        await self._listener.close()


def webhook_server(
    settings: Settings,
    *,
    http: httpx.AsyncClient,
    on_event: Callable[[WebhookEvent], object],
    clock: Callable[[], float] = time.time,
) -> WebhookServer:
    """The server the settings ask for, checking deliveries against fal's published keys.

    `clock` must be real time: fal's timestamps are.
    """
    keys = FalWebhookKeys(http, jwks_url(settings.fal_rest_url), clock=clock)
    receiver = WebhookReceiver(WebhookVerifier(keys, clock=clock), on_event)
    return WebhookServer(receiver, host=settings.fal_webhook_host, port=settings.fal_webhook_port)
