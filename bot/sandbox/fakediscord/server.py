"""The fake Discord's HTTP side: each REST, CDN and gateway request enters, is checked, recorded."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import BodyPartReader, hdrs, web

from .errors import ApiError
from .faults import FaultControls
from .records import RecordedRequest, UploadedFile
from .routes import Call, match_route
from .state import _CDN_PREFIXES, _JSON, API_PREFIX

_log = logging.getLogger(__name__)


class HttpFront(FaultControls):
    """Routes a request to the gateway, the REST API or the CDN; records it with its violations."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if (
            path.rstrip("/") == "/gateway"
            and request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        ):
            return await self.gateway.handle(request)
        if path.startswith(API_PREFIX + "/"):
            return await self._handle_api(request, path[len(API_PREFIX) :])
        if path.startswith(_CDN_PREFIXES):
            return await self._handle_cdn(request)
        await self._record_plain(request, path, 404, api=False, route=None)
        return web.Response(status=404, text="404: Not Found")

    async def _handle_api(self, request: web.Request, path: str) -> web.StreamResponse:
        method = request.method.upper()
        auth = request.headers.get(hdrs.AUTHORIZATION, "")
        bot_auth = auth.startswith("Bot ")
        violations: list[str] = []
        try:
            body, files = await _read_body(request)
        except ValueError as exc:
            body, files = None, ()
            violations.append(f"{method} {path}: unreadable body: {exc}")
        call = Call(method, path, dict(request.query), body, files, bot_auth)
        matched = match_route(method, path)
        hold = self._take_hold(method, path)
        if hold is not None and hold.before and not await hold._hold(path):
            return _dropped(request)
        if self._check_body is not None and body is not None:
            violations += self._check_body(method, path, body)
        status: int
        answer: Any
        headers: dict[str, str] = {}
        try:
            fault = self._take_fault(method, path)
            if fault is not None and not fault.after:
                raise fault.error(self.now())
            if matched is None:
                _log.warning("fake Discord: unknown route %s %s (answered 404)", method, path)
                raise ApiError(404, 0, "404: Not Found")
            route, params = matched
            if route.bot and not (bot_auth and self._token_ok(auth[4:])):
                raise ApiError(401, 0, "401: Unauthorized")
            status, answer = await self._rest.handler(route)(call, **params)
            if fault is not None:
                raise fault.error(self.now())
        except ApiError as error:
            status, answer, headers = error.status, error.body(), error.headers
        except Exception as exc:
            # A bug in the fake: answer 400 (a 500 would make discord.py retry for ~25 s) and
            # make assert_valid() fail with it.
            _log.exception("fake Discord: internal error on %s %s", method, path)
            violations.append(f"{method} {path}: fake Discord internal error: {exc!r}")
            status, answer = 400, {"message": f"fake Discord internal error: {exc!r}", "code": 0}
        self.violations += violations
        self._record(
            RecordedRequest(
                method=method,
                path=path,
                query=dict(request.query),
                json=body,
                files=files,
                headers=_safe_headers(request),
                bot_auth=bot_auth,
                status=status,
                response=answer,
                at=self.now(),
                route=f"{matched[0].method} {matched[0].template}" if matched else None,
                violations=tuple(violations),
            )
        )
        await self._changed()
        if hold is not None and not hold.before and not await hold._hold(path):
            return _dropped(request)
        if answer is None:
            return web.Response(status=status, headers=headers)
        # Exactly "application/json": discord.py compares the whole header value.
        headers = {**headers, "Content-Type": _JSON}
        return web.Response(status=status, body=json.dumps(answer).encode(), headers=headers)

    async def _handle_cdn(self, request: web.Request) -> web.StreamResponse:
        method = request.method.upper()
        fault = self._take_fault(method, request.path)
        if fault is not None:
            error = fault.error(self.now())
            await self._record_plain(request, request.path, error.status, api=False, route="CDN")
            return web.Response(status=error.status, text=error.message, headers=error.headers)
        stored = self.store.cdn_lookup(request.path)
        if stored is None or method not in ("GET", "HEAD"):
            await self._record_plain(request, request.path, 404, api=False, route="CDN")
            return web.Response(status=404, text="404: Not Found")
        if method == "GET":
            stored.downloads += 1
        await self._record_plain(request, request.path, 200, api=False, route="CDN")
        return web.Response(
            status=200,
            body=stored.data if method == "GET" else None,
            headers={"Content-Type": stored.content_type or "application/octet-stream"},
        )

    async def _record_plain(
        self, request: web.Request, path: str, status: int, *, api: bool, route: str | None
    ) -> None:
        self._record(
            RecordedRequest(
                method=request.method.upper(),
                path=path,
                query=dict(request.query),
                json=None,
                files=(),
                headers=_safe_headers(request),
                bot_auth=request.headers.get(hdrs.AUTHORIZATION, "").startswith("Bot "),
                status=status,
                response=None,
                at=self.now(),
                route=route,
                api=api,
            )
        )
        await self._changed()


def _dropped(request: web.Request) -> web.Response:
    """Close the connection without an answer (the response returned is never sent)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)


async def _read_body(request: web.Request) -> tuple[Any, tuple[UploadedFile, ...]]:
    content_type = request.content_type
    if content_type.startswith("multipart/"):
        payload: Any = None
        files: list[UploadedFile] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            data = await part.read(decode=False)
            if name == "payload_json":
                payload = json.loads(data.decode("utf-8"))
            elif name.startswith("files[") or name.startswith("file"):
                files.append(
                    UploadedFile(
                        field=name,
                        filename=part.filename or name,
                        content_type=part.headers.get(hdrs.CONTENT_TYPE),
                        data=bytes(data),
                    )
                )
        return payload, tuple(files)
    raw = await request.read()
    if not raw:
        return None, ()
    if content_type == _JSON:
        return json.loads(raw.decode("utf-8")), ()
    raise ValueError(f"unsupported Content-Type {content_type!r}")


def _safe_headers(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
