"""The plain answers every route family of the emulator gives: not found, invalid, dropped."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from bot.emulator.jobs import StoredFile


def drop(request: web.Request) -> None:
    """Close the TCP connection at once, without an answer, like a crashed proxy."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def not_found(detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=404)


def invalid(detail: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"detail": detail}, status=422)


def wants_logs(request: web.Request) -> bool:
    return request.query.get("logs", "0").lower() in ("1", "true", "yes")


def file_response(stored: StoredFile) -> web.FileResponse:
    return web.FileResponse(stored.path, headers={"Content-Type": stored.content_type})
