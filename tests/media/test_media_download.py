"""download() fetches only from allowed hosts, only up to max_bytes, leaving no partial files."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bot.media import DownloadFailed, DownloadRefused, download, host_allowed

BODY = bytes(range(256)) * 400  # 100 KiB
CHUNK = 64 * 1024
ENDLESS_CHUNKS = 800  # 50 MiB if nobody stops reading


@dataclass
class Server:
    base: str
    port: int
    hits: list[str] = field(default_factory=list)
    stream_aborted: asyncio.Event = field(default_factory=asyncio.Event)
    streamed_bytes: int = 0


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(base="", port=0)

    async def file(request: web.Request) -> web.Response:
        state.hits.append(request.path)
        return web.Response(body=BODY, content_type="video/mp4")

    async def endless(request: web.Request) -> web.StreamResponse:
        state.hits.append(request.path)
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            for _ in range(ENDLESS_CHUNKS):
                await response.write(b"\x00" * CHUNK)
                state.streamed_bytes += CHUNK
        except (ConnectionError, RuntimeError):
            state.stream_aborted.set()
            raise
        return response

    async def declared_huge(request: web.Request) -> web.StreamResponse:
        state.hits.append(request.path)
        response = web.StreamResponse(headers={"Content-Length": str(10**9)})
        await response.prepare(request)
        await response.write(b"\x00" * 16)
        return response

    async def redirect(request: web.Request) -> web.Response:
        state.hits.append(request.path)
        raise web.HTTPFound(request.query["to"])

    async def missing(request: web.Request) -> web.Response:
        state.hits.append(request.path)
        return web.Response(status=404, text="gone")

    app = web.Application()
    app.router.add_get("/file.mp4", file)
    app.router.add_get("/endless", endless)
    app.router.add_get("/declared-huge", declared_huge)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/missing", missing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    state.base = f"http://127.0.0.1:{state.port}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


LOCAL = ("127.0.0.1",)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_downloads_from_an_allowed_host(
    server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    dest = tmp_path / "out.mp4"
    written = await download(
        client,
        f"{server.base}/file.mp4",
        dest,
        max_bytes=1_000_000,
        allowed_hosts=LOCAL,
        require_https=False,
    )
    assert written == len(BODY)
    assert dest.read_bytes() == BODY
    assert leftovers(tmp_path) == ["out.mp4"]


async def test_plain_http_is_refused_when_https_is_required(
    server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(DownloadRefused) as caught:
        await download(
            client, f"{server.base}/file.mp4", tmp_path / "x", max_bytes=10**6, allowed_hosts=LOCAL
        )
    assert caught.value.message == "downloads must use https; 127.0.0.1 was plain http."
    assert server.hits == []


async def test_a_host_not_allowed_is_refused_without_a_request(
    server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(DownloadRefused) as caught:
        await download(
            client,
            f"http://localhost:{server.port}/file.mp4?signature=secret",
            tmp_path / "x",
            max_bytes=10**6,
            allowed_hosts=LOCAL,
            require_https=False,
        )
    assert caught.value.message == (
        "the bot does not download from localhost; only from the hosts it expects."
    )
    assert server.hits == []
    assert leftovers(tmp_path) == []


async def test_size_cap_stops_the_read_and_deletes_the_partial_file(
    server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(DownloadRefused) as caught:
        await download(
            client,
            f"{server.base}/endless",
            tmp_path / "big.mp4",
            max_bytes=300_000,
            allowed_hosts=LOCAL,
            require_https=False,
        )
    assert caught.value.message == (
        "the file on 127.0.0.1 is larger than 300,000 bytes, the most allowed."
    )
    assert leftovers(tmp_path) == []
    # The server notices the closed connection long before it has sent its 50 MiB.
    await asyncio.wait_for(server.stream_aborted.wait(), timeout=30)
    assert server.streamed_bytes < ENDLESS_CHUNKS * CHUNK


async def test_declared_length_over_the_cap_is_refused_before_reading(
    server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(DownloadRefused) as caught:
        await download(
            client,
            f"{server.base}/declared-huge",
            tmp_path / "x",
            max_bytes=1000,
            allowed_hosts=LOCAL,
            require_https=False,
        )
    assert caught.value.message == (
        "the file on 127.0.0.1 is 1,000,000,000 bytes; at most 1,000 bytes are allowed."
    )
    assert leftovers(tmp_path) == []


async def test_redirect_to_another_host_is_refused(
    server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    target = httpx.QueryParams({"to": f"http://localhost:{server.port}/file.mp4"})
    with pytest.raises(DownloadRefused) as caught:
        await download(
            client,
            f"{server.base}/redirect?{target}",
            tmp_path / "x",
            max_bytes=10**6,
            allowed_hosts=LOCAL,
            require_https=False,
        )
    assert caught.value.message == (
        "the download was redirected to localhost, which is not a host the bot trusts."
    )
    assert server.hits == ["/redirect"]
    assert leftovers(tmp_path) == []


async def test_redirect_within_allowed_hosts_is_followed(
    server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    dest = tmp_path / "out.mp4"
    written = await download(
        client,
        f"{server.base}/redirect?to=/file.mp4",
        dest,
        max_bytes=10**6,
        allowed_hosts=LOCAL,
        require_https=False,
    )
    assert written == len(BODY)
    assert server.hits == ["/redirect", "/file.mp4"]


async def test_an_error_status_is_a_failed_download(
    server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(DownloadFailed) as caught:
        await download(
            client,
            f"{server.base}/missing",
            tmp_path / "x",
            max_bytes=10**6,
            allowed_hosts=LOCAL,
            require_https=False,
        )
    assert caught.value.message == "127.0.0.1 answered HTTP 404 instead of the file."
    assert leftovers(tmp_path) == []


async def test_an_unreachable_host_is_a_failed_download(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadFailed) as caught:
        await download(
            client,
            f"http://127.0.0.1:{port}/file.mp4",
            tmp_path / "x",
            max_bytes=10**6,
            allowed_hosts=LOCAL,
            require_https=False,
        )
    assert caught.value.message == "the download from 127.0.0.1 failed (ConnectError)."


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("v3.fal.media", True),
        ("a.b.fal.media", True),
        ("V3.FAL.MEDIA.", True),
        ("fal.media", False),
        ("evilfal.media", False),
        ("fal.media.evil.com", False),
        ("cdn.discordapp.com", True),
        ("media.discordapp.net", False),
        ("", False),
    ],
)
def test_host_rules_are_exact_names_or_dot_suffixes(host: str, allowed: bool) -> None:
    assert host_allowed(host, [".fal.media", "cdn.discordapp.com"]) is allowed


async def test_non_http_schemes_are_refused(client: httpx.AsyncClient, tmp_path: Path) -> None:
    with pytest.raises(DownloadRefused) as caught:
        await download(
            client, "file:///etc/passwd", tmp_path / "x", max_bytes=10, allowed_hosts=LOCAL
        )
    assert caught.value.message == "downloads must use https, not file."
