"""The emulator's control routes under /_emulator/ (no auth: a local tool): counts, submissions,
scripts, faults, advance, expire, endpoints, reset."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.emulator.answers import not_found
from bot.emulator.jobs import UnknownRequest
from bot.emulator.scripts import Fault, JobScript, ScriptError

if TYPE_CHECKING:
    from bot.emulator.server import FalEmulator


class ControlRoutes:
    """Lets a test or a person script the emulator over HTTP, as the Python API does."""

    def __init__(self, emulator: FalEmulator) -> None:
        self._em = emulator

    async def counts(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(dict(self._em.counts))

    async def submissions(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([s.to_json() for s in self._em.submissions])

    async def script(self, request: web.Request) -> web.StreamResponse:
        async def apply(body: Any) -> Any:
            if not isinstance(body, dict):
                raise ScriptError('send {"default": {...}, "next": [{...}, ...]}')
            if "default" in body:
                self._em.default_script = JobScript.from_json(body["default"])
            self._em.script_next(*(JobScript.from_json(s) for s in body.get("next", [])))
            return {
                "default": asdict(self._em.default_script),
                "pending": len(self._em._next_scripts),
            }

        return await _apply(request, apply)

    async def faults(self, request: web.Request) -> web.StreamResponse:
        async def apply(body: Any) -> Any:
            items = body.get("faults", []) if isinstance(body, dict) and "faults" in body else body
            items = items if isinstance(items, list) else [items]
            self._em.inject(*(Fault.from_json(item) for item in items))
            return {
                "pending": [{**asdict(p.fault), "times": p.remaining} for p in self._em._faults]
            }

        return await _apply(request, apply)

    async def advance(self, request: web.Request) -> web.StreamResponse:
        try:
            stage = await self._em.advance(request.match_info["id"])
        except UnknownRequest as exc:
            return not_found(str(exc))
        return web.json_response({"status": stage})

    async def expire(self, request: web.Request) -> web.StreamResponse:
        try:
            self._em.expire(request.match_info["id"])
        except UnknownRequest as exc:
            return not_found(str(exc))
        return web.json_response({"expired": True})

    async def endpoints(self, request: web.Request) -> web.StreamResponse:
        async def apply(body: Any) -> Any:
            if not isinstance(body, dict):
                raise ScriptError('send {"remove": [ids], "restore": [ids]}')
            for endpoint_id in body.get("remove", []):
                self._em.remove_endpoint(str(endpoint_id))
            for endpoint_id in body.get("restore", []):
                self._em.restore_endpoint(str(endpoint_id))
            return {"removed": sorted(self._em._removed)}

        return await _apply(request, apply)

    async def reset(self, request: web.Request) -> web.StreamResponse:
        self._em.reset()
        return web.json_response({"reset": True})


async def _apply(
    request: web.Request, apply: Callable[[Any], Awaitable[Any]]
) -> web.StreamResponse:
    try:
        body = await request.json()
        return web.json_response(await apply(body))
    except (json.JSONDecodeError, ScriptError, TypeError, ValueError) as exc:
        return web.json_response({"detail": str(exc)}, status=400)
