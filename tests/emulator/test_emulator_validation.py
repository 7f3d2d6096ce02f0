"""Bodies are checked like fal checks them: 422 with a detail list naming each bad field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.emulator import FalEmulator

from .conftest import png_uri

IMG = "https://127.0.0.1/x.png"


async def _detail(http: httpx.AsyncClient, endpoint: str, body: Any) -> list[dict[str, Any]]:
    response = await http.post(f"/{endpoint}", json=body)
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    for entry in detail:
        assert entry.keys() >= {"loc", "msg", "type"}
    return detail


BAD: list[tuple[str, Any, list[Any], str]] = [
    ("fal-ai/pika/v2.5/text-to-video", {}, ["body", "prompt"], "missing"),
    ("fal-ai/pika/v2.5/text-to-video", {"prompt": "  "}, ["body", "prompt"], "string_too_short"),
    (
        "fal-ai/pika/v2.5/text-to-video",
        {"prompt": "x" * 1501},
        ["body", "prompt"],
        "string_too_long",
    ),
    (
        "fal-ai/pika/v2.5/text-to-video",
        {"prompt": "p", "aspect_ratio": "16:9"},
        ["body", "aspect_ratio"],
        "extra_forbidden",
    ),
    (
        "fal-ai/pika/v2.2/text-to-video",
        {"prompt": "p", "resolution": "480p"},
        ["body", "resolution"],
        "enum",
    ),
    (
        "fal-ai/pika/v2.2/text-to-video",
        {"prompt": "p", "aspect_ratio": "21:9"},
        ["body", "aspect_ratio"],
        "enum",
    ),
    (
        "fal-ai/pika/v2.2/text-to-video",
        {"prompt": "p", "duration": 7},
        ["body", "duration"],
        "enum",
    ),
    (
        "fal-ai/pika/v2.2/text-to-video",
        {"prompt": "p", "seed": -1},
        ["body", "seed"],
        "greater_than_equal",
    ),
    (
        "fal-ai/pika/v2.2/text-to-video",
        {"prompt": "p", "seed": 2**32},
        ["body", "seed"],
        "less_than_equal",
    ),
    ("fal-ai/pika/v2.2/text-to-video", {"prompt": "p", "seed": "7"}, ["body", "seed"], "int_type"),
    ("fal-ai/pika/v2.2/image-to-video", {"prompt": "p"}, ["body", "image_url"], "missing"),
    (
        "fal-ai/pika/v2.2/image-to-video",
        {"prompt": "p", "image_url": "file:///etc/passwd"},
        ["body", "image_url"],
        "url_parsing",
    ),
    (
        "fal-ai/pika/v2.2/image-to-video",
        {"prompt": "p", "image_url": IMG, "aspect_ratio": "1:1"},
        ["body", "aspect_ratio"],
        "extra_forbidden",
    ),
    ("fal-ai/pika/v2.2/pikaframes", {"image_urls": [IMG]}, ["body", "image_urls"], "too_short"),
    ("fal-ai/pika/v2.2/pikaframes", {"image_urls": [IMG] * 6}, ["body", "image_urls"], "too_long"),
    (
        "fal-ai/pika/v2.2/pikaframes",
        {"image_urls": [IMG] * 3, "transitions": [{"duration": 5}]},
        ["body", "transitions"],
        "value_error",
    ),
    (
        "fal-ai/pika/v2.2/pikaframes",
        {"image_urls": [IMG] * 3, "transitions": [{"duration": 20}, {"duration": 10}]},
        ["body", "transitions"],
        "value_error",
    ),
    (
        "fal-ai/pika/v2.2/pikaframes",
        {"image_urls": [IMG] * 2, "duration": 5},
        ["body", "duration"],
        "extra_forbidden",
    ),
    ("fal-ai/pika/v2.2/pikascenes", {"prompt": "p"}, ["body", "image_urls"], "missing"),
    (
        "fal-ai/pika/v2.2/pikascenes",
        {"prompt": "p", "image_urls": [IMG], "ingredients_mode": "loose"},
        ["body", "ingredients_mode"],
        "enum",
    ),
    (
        "fal-ai/pika/v1.5/pikaffects",
        {"image_url": IMG, "pikaffect": "Vaporise"},
        ["body", "pikaffect"],
        "enum",
    ),
    ("fal-ai/pika/v2/pikaswaps", {"video_url": IMG}, ["body"], "value_error"),
    ("fal-ai/pika/v2/pikadditions", {"video_url": IMG}, ["body", "image_url"], "missing"),
]


@pytest.mark.parametrize(("endpoint", "body", "loc", "kind"), BAD)
async def test_bad_body_answers_422_naming_the_field(
    emu: FalEmulator,
    http: httpx.AsyncClient,
    endpoint: str,
    body: Any,
    loc: list[Any],
    kind: str,
) -> None:
    detail = await _detail(http, endpoint, body)

    assert [(d["loc"], d["type"]) for d in detail] == [(loc, kind)]
    assert emu.submissions == []


async def test_every_problem_is_reported_at_once(http: httpx.AsyncClient) -> None:
    detail = await _detail(
        http,
        "fal-ai/pika/v2.2/text-to-video",
        {"aspect_ratio": "2:1", "resolution": "4k", "duration": "forever"},
    )

    assert {d["loc"][-1] for d in detail} == {"prompt", "aspect_ratio", "resolution", "duration"}


async def test_body_that_is_not_a_json_object_is_422(http: httpx.AsyncClient) -> None:
    broken = await http.post(
        "/fal-ai/pika/v2.5/text-to-video",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    listed = await http.post("/fal-ai/pika/v2.5/text-to-video", json=["prompt"])

    assert broken.status_code == listed.status_code == 422
    assert broken.json()["detail"][0]["type"] == "json_invalid"
    assert listed.json()["detail"][0]["type"] == "dict_type"


async def test_duration_as_string_is_accepted_and_recorded(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    await http.post("/fal-ai/pika/v2.5/text-to-video", json={"prompt": "p", "duration": "10"})
    await http.post("/fal-ai/pika/v2.5/text-to-video", json={"prompt": "p", "duration": 5})

    assert [s.duration_type for s in emu.submissions] == ["str", "int"]


async def test_scenes_accepts_old_images_form_and_says_which_it_got(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    old = {"prompt": "p", "images": [{"image_url": png_uri()}]}
    new = {"prompt": "p", "image_urls": [png_uri()]}

    for body in (old, new):
        response = await http.post("/fal-ai/pika/v2.2/pikascenes", json=body)
        assert response.status_code == 200

    assert [s.scenes_field for s in emu.submissions] == ["images", "image_urls"]


async def test_unknown_fields_are_ignored_and_recorded(
    emu: FalEmulator, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        "/fal-ai/pika/v2.5/text-to-video", json={"prompt": "p", "style": "anime"}
    )

    assert response.status_code == 200
    assert emu.submissions[0].ignored_fields == ("style",)


async def test_swap_with_only_a_prompt_is_accepted(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/fal-ai/pika/v2/pikaswaps",
        json={"video_url": IMG, "prompt": "a cat", "modify_region": "dog"},
    )

    assert response.status_code == 200
