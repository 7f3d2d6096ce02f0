"""The emulator's storage and CDN routes: upload tokens, uploads (both kinds) and the files."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from aiohttp import web

from bot.emulator.answers import file_response, not_found
from bot.emulator.jobs import StoredFile

if TYPE_CHECKING:
    from bot.emulator.server import FalEmulator

CDN_TOKEN_SECONDS = 3600


class StorageRoutes:
    """What rest.fal.ai's storage and fal's CDN answer; uploads and result videos live here."""

    def __init__(self, emulator: FalEmulator) -> None:
        self._em = emulator
        self.files: dict[str, StoredFile] = {}
        self._pending_uploads: dict[str, StoredFile] = {}
        self._tokens: dict[str, float] = {}

    async def token(self, request: web.Request) -> web.StreamResponse:
        answer = await self._em._intake(request, "token")
        if answer is not None:
            return answer
        token = uuid.uuid4().hex
        self._tokens[token] = time.time() + CDN_TOKEN_SECONDS
        expires = datetime.now(UTC) + timedelta(seconds=CDN_TOKEN_SECONDS)
        return web.json_response(
            {
                "token": token,
                "token_type": "Bearer",
                "base_url": f"{self._em._base(request)}/cdn",
                "expires_at": expires.isoformat(),
            }
        )

    def _bearer_ok(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self._tokens.get(token)
        return scheme.lower() == "bearer" and expiry is not None and expiry > time.time()

    async def cdn_upload(self, request: web.Request) -> web.StreamResponse:
        answer = await self._em._intake(request, "upload", auth=False)
        if answer is not None:
            return answer
        if not self._bearer_ok(request):
            return web.json_response(
                {"detail": "Missing or expired storage token: get one from /storage/auth/token"},
                status=401,
            )
        data = await request.read()
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        name = request.headers.get("X-Fal-File-Name") or "upload" + _extension(content_type)
        stored = await self._store(data, content_type, name)
        return web.json_response(
            {
                "access_url": f"{self._em._base(request)}/cdn/files/{stored}",
                "content_type": content_type,
                "file_name": name,
                "file_size": len(data),
            }
        )

    async def _store(self, data: bytes, content_type: str, name: str) -> str:
        """Keep uploaded bytes on disk; return '{id}/{quoted name}' for the file URL."""
        assert self._em._dir is not None
        file_id = uuid.uuid4().hex
        path = self._em._dir / "uploads" / file_id
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, data)
        self.files[file_id] = StoredFile(path, content_type, name)
        return f"{file_id}/{quote(name, safe='')}"

    async def initiate_upload(self, request: web.Request) -> web.StreamResponse:
        # The older two-step upload: it hands out a URL to PUT to, like a signed GCS URL.
        answer = await self._em._intake(request, "token")
        if answer is not None:
            return answer
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        body = body if isinstance(body, dict) else {}
        content_type = str(body.get("content_type") or "application/octet-stream")
        name = str(body.get("file_name") or "upload" + _extension(content_type))
        upload_id = uuid.uuid4().hex
        assert self._em._dir is not None
        path = self._em._dir / "uploads" / upload_id
        self._pending_uploads[upload_id] = StoredFile(path, content_type, name)
        quoted = quote(name, safe="")
        base = self._em._base(request)
        return web.json_response(
            {
                "upload_url": f"{base}/storage/upload/{upload_id}",
                "file_url": f"{base}/storage/files/{upload_id}/{quoted}",
            }
        )

    async def legacy_upload(self, request: web.Request) -> web.StreamResponse:
        answer = await self._em._intake(request, "upload", auth=False)
        if answer is not None:
            return answer
        upload_id = request.match_info["id"]
        pending = self._pending_uploads.pop(upload_id, None)
        if pending is None:
            return not_found("Unknown upload URL")
        data = await request.read()
        pending.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(pending.path.write_bytes, data)
        content_type = request.headers.get("Content-Type", pending.content_type)
        self.files[upload_id] = StoredFile(pending.path, content_type, pending.file_name)
        return web.Response(status=200)

    async def stored_file(self, request: web.Request) -> web.StreamResponse:
        """An upload, at /storage/files/{id}/{name} or /cdn/files/{id}/{name}."""
        return await self._serve(request, request.match_info["id"])

    async def result_file(self, request: web.Request) -> web.StreamResponse:
        """A result video, at /files/{name}."""
        return await self._serve(request, request.match_info["name"])

    async def _serve(self, request: web.Request, key: str) -> web.StreamResponse:
        answer = await self._em._intake(request, "file", auth=False)
        if answer is not None:
            return answer
        stored = self.files.get(key)
        if stored is None:
            return not_found("File not found")
        return file_response(stored)

    def stored_for_path(self, path: str) -> StoredFile | None:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if len(segments) == 2 and segments[0] == "files":
            return self.files.get(segments[1])
        if len(segments) == 4 and segments[:2] in (["cdn", "files"], ["storage", "files"]):
            return self.files.get(segments[2])
        return None


def _extension(content_type: str) -> str:
    return {
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "image/webp": ".webp",
        "video/mp4": ".mp4",
        "video/quicktime": ".mov",
        "video/webm": ".webm",
    }.get(content_type.split(";")[0].strip(), ".bin")
