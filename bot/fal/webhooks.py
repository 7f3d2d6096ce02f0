"""fal's webhook deliveries: fetch and cache fal's signing keys, verify a delivery, drop repeats."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger(__name__)

JWKS_PATH = "/.well-known/jwks.json"
REQUEST_ID_HEADER = "X-Fal-Webhook-Request-Id"
USER_ID_HEADER = "X-Fal-Webhook-User-Id"
TIMESTAMP_HEADER = "X-Fal-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Fal-Webhook-Signature"
HEADERS = (REQUEST_ID_HEADER, USER_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)

# fal's documented limits: deliveries older or newer than this are replays or a broken clock.
MAX_SKEW_SECONDS = 300
KEYS_TTL_SECONDS = 24 * 3600
# A flood of forged deliveries must not become a flood of requests to fal's JWKS.
MIN_REFETCH_SECONDS = 60.0
JWKS_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
JWKS_MAX_BYTES = 256 * 1024


class WebhookError(Exception):
    """Base of every reason a webhook delivery is not accepted."""


class WebhookMalformed(WebhookError):
    """The delivery lacks a header, or its headers or body are not what fal sends."""


class WebhookStale(WebhookError):
    """The delivery's timestamp is too far from now: a replay, or a clock that is off."""


class WebhookSignatureInvalid(WebhookError):
    """No key of fal's JWKS verifies the delivery's signature: it did not come from fal."""


class WebhookKeysUnavailable(WebhookError):
    """fal's signing keys could not be fetched, so no delivery can be verified right now."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One verified delivery: fal finished `request_id`, well (`ok`) or not."""

    request_id: str
    ok: bool
    payload: Any
    user_id: str
    timestamp: int
    gateway_request_id: str | None = None
    error: str | None = None
    payload_error: str | None = None


def jwks_url(rest_url: str) -> str:
    """Where fal publishes its webhook keys, given its REST base URL."""
    return rest_url.rstrip("/") + JWKS_PATH


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """The bytes fal signs for a delivery (also what the emulator signs)."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join([request_id, user_id, timestamp, digest]).encode()


def public_jwk(key: Ed25519PublicKey, kid: str | None = None) -> dict[str, str]:
    """A public key as a JWKS entry (OKP, Ed25519, base64url `x` without padding)."""
    raw = key.public_bytes_raw()
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
        "use": "sig",
        "alg": "EdDSA",
    }
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def parse_jwks(document: Any) -> tuple[Ed25519PublicKey, ...]:
    """The Ed25519 keys of a JWKS document; entries of other kinds or broken ones are skipped."""
    entries = document.get("keys") if isinstance(document, dict) else None
    keys: list[Ed25519PublicKey] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            continue
        x = entry.get("x")
        if not isinstance(x, str):
            continue
        try:
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (binascii.Error, ValueError):
            continue
    return tuple(keys)


class FalWebhookKeys:
    """fal's webhook signing keys, fetched from its JWKS and kept for a day."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        ttl_seconds: float = KEYS_TTL_SECONDS,
        min_refetch_seconds: float = MIN_REFETCH_SECONDS,
        timeout: httpx.Timeout = JWKS_TIMEOUT,
    ) -> None:
        self._http = http
        self.url = url
        self._clock = clock
        self._ttl = ttl_seconds
        self._min_refetch = min_refetch_seconds
        self._timeout = timeout
        self._keys: tuple[Ed25519PublicKey, ...] = ()
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self._problem = f"fal's webhook keys have not been fetched from {url} yet"

    async def current(self) -> tuple[Ed25519PublicKey, ...]:
        """The cached keys, fetched first when there are none or they are a day old.

        If a refresh fails, the old keys go on being used. Raises WebhookKeysUnavailable only
        when there are no keys at all.
        """
        async with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
            if stale and not self._tried_lately(now):
                await self._fetch()
            if not self._keys:
                raise WebhookKeysUnavailable(self._problem)
            return self._keys

    async def refresh(self) -> tuple[Ed25519PublicKey, ...] | None:
        """Fetch again (fal may have rotated its keys); None when they were fetched just now."""
        async with self._lock:
            if self._tried_lately(self._clock()):
                return None
            await self._fetch()
            return self._keys

    def _tried_lately(self, now: float) -> bool:
        return self._attempted_at is not None and now - self._attempted_at < self._min_refetch

    async def _fetch(self) -> None:
        """Replace the keys with fal's current ones; on failure keep the old ones."""
        self._attempted_at = self._clock()
        try:
            keys = parse_jwks(await self._download())
            if not keys:
                raise WebhookKeysUnavailable(f"fal's key set at {self.url} has no Ed25519 key")
        except WebhookKeysUnavailable as error:
            self._problem = str(error)
            log.warning("%s%s", error, "; keeping the keys fetched before" if self._keys else "")
            return
        self._keys = keys
        self._fetched_at = self._clock()
        log.info("fetched %d webhook signing key(s) from %s", len(keys), self.url)

    async def _download(self) -> Any:
        try:
            response = await self._http.get(self.url, timeout=self._timeout)
        except httpx.HTTPError as error:
            raise WebhookKeysUnavailable(
                f"fal's webhook keys could not be fetched from {self.url} ({type(error).__name__})"
            ) from None
        if response.status_code != 200:
            raise WebhookKeysUnavailable(
                f"fal's webhook keys could not be fetched from {self.url} "
                f"(HTTP {response.status_code})"
            )
        if len(response.content) > JWKS_MAX_BYTES:
            raise WebhookKeysUnavailable(f"fal's key set at {self.url} is implausibly large")
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise WebhookKeysUnavailable(f"fal's key set at {self.url} is not JSON") from None


class WebhookVerifier:
    """Checks that a delivery came from fal, recently, and reads it."""

    def __init__(
        self,
        keys: FalWebhookKeys,
        *,
        clock: Callable[[], float] = time.time,
        max_skew_seconds: float = MAX_SKEW_SECONDS,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._max_skew = max_skew_seconds

    async def verify(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """The delivery as a WebhookEvent, or raise why it is refused.

        Raises WebhookMalformed, WebhookStale, WebhookSignatureInvalid or WebhookKeysUnavailable.
        The timestamp is checked before any key is fetched, so replays cost nothing.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        missing = [name for name in HEADERS if not lowered.get(name.lower())]
        if missing:
            raise WebhookMalformed(f"the delivery lacks the header(s) {', '.join(missing)}")
        request_id = lowered[REQUEST_ID_HEADER.lower()]
        user_id = lowered[USER_ID_HEADER.lower()]
        stamp = lowered[TIMESTAMP_HEADER.lower()]
        try:
            timestamp = int(stamp)
        except ValueError:
            raise WebhookMalformed(f"{TIMESTAMP_HEADER} is not epoch seconds") from None
        skew = self._clock() - timestamp
        if abs(skew) > self._max_skew:
            when = "old" if skew > 0 else "in the future"
            raise WebhookStale(
                f"the delivery for {request_id} is {abs(skew):.0f} s {when} "
                f"(at most {self._max_skew:g} s allowed)"
            )
        try:
            signature = bytes.fromhex(lowered[SIGNATURE_HEADER.lower()])
        except ValueError:
            raise WebhookMalformed(f"{SIGNATURE_HEADER} is not hexadecimal") from None
        message = signed_message(request_id, user_id, stamp, body)
        if not _any_verifies(await self._keys.current(), signature, message):
            rotated = await self._keys.refresh()
            if rotated is None or not _any_verifies(rotated, signature, message):
                raise WebhookSignatureInvalid(
                    f"the delivery for {request_id} is not signed by any of fal's keys"
                )
        return _event(request_id, user_id, timestamp, body)


def _any_verifies(keys: tuple[Ed25519PublicKey, ...], signature: bytes, message: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


def _event(request_id: str, user_id: str, timestamp: int, body: bytes) -> WebhookEvent:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WebhookMalformed(f"the delivery for {request_id} is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookMalformed(f"the delivery for {request_id} is not a JSON object")
    if data.get("request_id") != request_id:
        raise WebhookMalformed(f"the delivery's body names another request than {request_id}")
    status = data.get("status")
    if status not in ("OK", "ERROR"):
        raise WebhookMalformed(f"the delivery for {request_id} has an unknown status {status!r}")
    return WebhookEvent(
        request_id=request_id,
        ok=status == "OK",
        payload=data.get("payload"),
        user_id=user_id,
        timestamp=timestamp,
        gateway_request_id=_text(data.get("gateway_request_id")),
        error=_text(data.get("error")),
        payload_error=_text(data.get("payload_error")),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class RecentRequests:
    """The request ids seen lately, at most `size` of them: fal repeats its deliveries.

    Only a first line of defence; the job's state in the database decides what happens.
    """

    def __init__(self, size: int = 10_000) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, request_id: str) -> bool:
        """Remember the id; True when it was new."""
        if request_id in self._seen:
            self._seen.move_to_end(request_id)
            return False
        self._seen[request_id] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True
