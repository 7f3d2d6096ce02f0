"""Storage uploads, result hosting, and how file inputs are fetched (or fail like fal's would)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.emulator import FalEmulator

from .conftest import FAST_PREVIEW, KEY, png_bytes, png_uri, video_shape

I2V = "fal-ai/pika/v2.2/image-to-video"


async def _run(
    emu: FalEmulator, http: httpx.AsyncClient, endpoint: str, body: dict[str, Any]
) -> httpx.Response:
    """Submit, wait for COMPLETED, and return the result response."""
    response = await http.post(f"/{endpoint}", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    await emu.wait_for_status(data["request_id"], "COMPLETED")
    return await http.get(data["response_url"])


async def _upload(http: httpx.AsyncClient, data: bytes, content_type: str, name: str) -> str:
    token = (
        await http.post("/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={})
    ).json()
    response = await http.post(
        f"{token['base_url']}/files/upload",
        content=data,
        headers={
            "Authorization": f"{token['token_type']} {token['token']}",
            "Content-Type": content_type,
            "X-Fal-File-Name": name,
        },
    )
    assert response.status_code == 200, response.text
    url: str = response.json()["access_url"]
    return url


async def test_storage_token_then_upload_then_public_download(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    token = (
        await http.post("/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={})
    ).json()
    assert token["token_type"] == "Bearer"
    assert token["base_url"] == f"{emu.base_url}/cdn"
    assert token["expires_at"].endswith("+00:00")

    url = await _upload(http, b"\x89PNG fake", "image/png", "cat.png")
    async with httpx.AsyncClient() as anonymous:
        download = await anonymous.get(url)

    assert url.endswith("/cat.png")
    assert download.content == b"\x89PNG fake"
    assert download.headers["content-type"] == "image/png"
    assert (emu.counts["token"], emu.counts["upload"], emu.counts["file"]) == (2, 1, 1)


async def test_upload_needs_a_storage_token_not_the_key(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    with_key = await http.post(f"{emu.base_url}/cdn/files/upload", content=b"x")
    async with httpx.AsyncClient() as anonymous:
        with_junk = await anonymous.post(
            f"{emu.base_url}/cdn/files/upload",
            content=b"x",
            headers={"Authorization": "Bearer junk"},
        )

    assert (with_key.status_code, with_junk.status_code) == (401, 401)


async def test_legacy_initiate_and_put_upload(emu: FalEmulator, http: httpx.AsyncClient) -> None:
    init = (
        await http.post(
            "/storage/upload/initiate",
            json={"file_name": "a.png", "content_type": "image/png"},
        )
    ).json()

    put = await http.put(
        init["upload_url"], content=b"bytes", headers={"Content-Type": "image/png"}
    )
    got = await http.get(init["file_url"])

    assert put.status_code == 200
    assert got.content == b"bytes"


async def test_uploaded_image_works_as_a_job_input(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    url = await _upload(http, png_bytes(300, 600), "image/png", "tall.png")

    result = await _run(emu, http, I2V, {"prompt": "p", "image_url": url})

    video = await http.get(result.json()["video"]["url"])
    width, height, _ = video_shape(video.content)
    assert width / height == pytest.approx(0.5, rel=0.05)


@pytest.fixture
async def image_host() -> AsyncIterator[str]:
    """Another loopback server (like a fake Discord CDN) that serves one PNG and one 404."""

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=png_bytes(400, 200), content_type="image/png")

    app = web.Application()
    app.router.add_get("/image.png", image)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_loopback_url_inputs_are_fetched(
    emu: FalEmulator, http: httpx.AsyncClient, image_host: str
) -> None:
    result = await _run(emu, http, I2V, {"prompt": "p", "image_url": f"{image_host}/image.png"})

    assert result.status_code == 200
    width, height, _ = video_shape((await http.get(result.json()["video"]["url"])).content)
    assert width / height == pytest.approx(2.0, rel=0.05)


async def test_missing_loopback_file_ends_as_a_download_error(
    emu: FalEmulator, http: httpx.AsyncClient, image_host: str
) -> None:
    result = await _run(emu, http, I2V, {"prompt": "p", "image_url": f"{image_host}/gone.png"})

    assert result.status_code == 422
    [entry] = result.json()["detail"]
    assert entry["loc"] == ["body", "image_url"]
    assert entry["type"] == "file_download_error"
    assert "404" in entry["msg"]


async def test_internet_urls_are_never_fetched(emu: FalEmulator, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"/{I2V}", json={"prompt": "p", "image_url": "https://cdn.discordapp.com/a.png"}
    )
    data = response.json()
    await emu.wait_for_status(data["request_id"], "COMPLETED")

    status = (await http.get(data["status_url"])).json()
    assert status["error_type"] == "file_download_error"
    assert "127.0.0.1" in status["error"]


async def test_an_unreadable_keyframe_is_named_in_the_error(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    junk = "data:image/png;base64," + base64.b64encode(b"not a png").decode()

    result = await _run(emu, http, "fal-ai/pika/v2.2/pikaframes", {"image_urls": [png_uri(), junk]})

    assert result.status_code == 422
    [entry] = result.json()["detail"]
    assert entry["loc"] == ["body", "image_urls", 1]
    assert entry["type"] == "image_load_error"


async def test_an_unreadable_video_is_a_video_load_error(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    url = await _upload(http, b"definitely not an mp4", "video/mp4", "x.mp4")

    result = await _run(emu, http, "fal-ai/pika/v2/pikaswaps", {"video_url": url, "prompt": "p"})

    assert result.json()["detail"][0]["type"] == "video_load_error"


async def test_downloads_are_bounded_in_size(image_host: str) -> None:
    small = FalEmulator(key=KEY, preview=FAST_PREVIEW, max_fetch_bytes=100)
    async with small:
        headers = {"Authorization": f"Key {KEY}"}
        async with httpx.AsyncClient(base_url=small.base_url, headers=headers) as http:
            result = await _run(
                small, http, I2V, {"prompt": "p", "image_url": f"{image_host}/image.png"}
            )

    assert "larger than 100 bytes" in result.json()["detail"][0]["msg"]


async def test_close_deletes_the_files_it_wrote() -> None:
    async with FalEmulator(key=KEY, preview=FAST_PREVIEW) as emu:
        async with httpx.AsyncClient(
            base_url=emu.base_url, headers={"Authorization": f"Key {KEY}"}
        ) as client:
            await _run(emu, client, "fal-ai/pika/v2.5/text-to-video", {"prompt": "p"})
        folder = emu.files_dir
        assert folder is not None
        assert any(folder.rglob("*.mp4"))

    assert not folder.exists()
