"""Prices: PRODUCT.md §3's defaults for every endpoint, resolution and duration, and overrides."""

from typing import Any

import pytest
from pydantic import ValidationError

from bot.pika import (
    ENDPOINTS,
    InputRef,
    Mode,
    PriceList,
    Pricing,
    build_request,
    endpoint_for,
    price,
    price_keys,
    price_table,
    pricing_of,
)

IMAGE = InputRef(sha256="a" * 64, content_type="image/png")
VIDEO = InputRef(sha256="b" * 64, content_type="video/mp4")
DEFAULTS = PriceList()

CLIP_PRICES = {("480p", 5): 10, ("720p", 5): 20, ("1080p", 5): 45,
               ("480p", 10): 20, ("720p", 10): 40, ("1080p", 10): 90}  # fmt: skip


def clip_options(mode: Mode, model: str) -> dict[str, Any]:
    if mode is Mode.TEXT:
        return {"prompt": "p", "model": model}
    if mode is Mode.ANIMATE:
        return {"image": IMAGE, "prompt": "p", "model": model}
    return {"image1": IMAGE, "prompt": "p"}


CLIP_CASES = [
    (endpoint, resolution, duration)
    for endpoint in ENDPOINTS
    if pricing_of(endpoint) is Pricing.CLIP
    for resolution in endpoint.resolutions
    for duration in (5, 10)
]


@pytest.mark.parametrize(
    ("endpoint", "resolution", "duration"),
    CLIP_CASES,
    ids=[f"{e.id}-{r}-{d}s" for e, r, d in CLIP_CASES],
)
def test_default_clip_prices(endpoint: Any, resolution: str, duration: int) -> None:
    options = clip_options(endpoint.mode, endpoint.model)
    request = build_request(endpoint.mode, resolution=resolution, duration=duration, **options)
    assert request.endpoint == endpoint
    assert price(request, DEFAULTS) == CLIP_PRICES[resolution, duration]


def test_every_clip_endpoint_and_resolution_is_covered() -> None:
    assert len(CLIP_CASES) == 2 * (3 + 2 * 3 + 2 * 3 + 2)


@pytest.mark.parametrize(
    ("mode", "options", "expected"),
    [
        # Left out: fal makes 720p, 5 s for text and animate…
        (Mode.TEXT, {"prompt": "p"}, 20),
        (Mode.TEXT, {"prompt": "p", "model": "v2-turbo"}, 20),
        (Mode.ANIMATE, {"image": IMAGE, "prompt": "p"}, 20),
        (Mode.TEXT, {"prompt": "p", "duration": 10}, 40),
        # …and 1080p for scenes (FAL.md "Seed corrections").
        (Mode.SCENES, {"image1": IMAGE, "prompt": "p"}, 45),
        (Mode.SCENES, {"image1": IMAGE, "prompt": "p", "duration": 10}, 90),
    ],
)
def test_unset_resolution_and_duration_are_priced_as_fal_will_make_them(
    mode: Mode, options: dict[str, Any], expected: int
) -> None:
    assert price(build_request(mode, **options), DEFAULTS) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, 4 * 5),  # 2 images, one default 5 s transition, 720p by default
        ({"image3": IMAGE, "image4": IMAGE, "image5": IMAGE}, 4 * 20),
        ({"durations": "7"}, 4 * 7),
        ({"durations": "7", "resolution": "720p"}, 4 * 7),
        ({"durations": "7", "resolution": "1080p"}, 9 * 7),
        ({"image3": IMAGE, "durations": "1,24", "resolution": "1080p"}, 9 * 25),
    ],
)
def test_frames_cost_per_second_of_transitions(options: dict[str, Any], expected: int) -> None:
    request = build_request(Mode.FRAMES, image1=IMAGE, image2=IMAGE, **options)
    assert price(request, DEFAULTS) == expected


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        (Mode.EFFECT, {"image": IMAGE, "effect": "Melt"}),
        (Mode.SWAP, {"video": VIDEO, "prompt": "p", "seed": 1}),
        (Mode.ADD, {"video": VIDEO, "image": IMAGE}),
    ],
)
def test_effect_swap_and_add_cost_20_flat(mode: Mode, options: dict[str, Any]) -> None:
    assert price(build_request(mode, **options), DEFAULTS) == 20


def test_an_override_wins_for_its_endpoint_and_key_only() -> None:
    prices = PriceList(overrides={"fal-ai/pika/v2.5/text-to-video": {"1080p/10s": 75}})
    v25 = build_request(Mode.TEXT, prompt="p", resolution="1080p", duration=10)
    v22 = build_request(Mode.TEXT, prompt="p", model="v2.2", resolution="1080p", duration=10)
    assert price(v25, prices) == 75
    assert price(build_request(Mode.TEXT, prompt="p", resolution="1080p"), prices) == 45
    assert price(v22, prices) == 90


def test_overrides_of_frames_and_flat_endpoints() -> None:
    prices = PriceList(
        overrides={
            "fal-ai/pika/v2.2/pikaframes": {"720p/per_second": 3},
            "fal-ai/pika/v2/pikaswaps": {"flat": 0},
        }
    )
    frames = build_request(Mode.FRAMES, image1=IMAGE, image2=IMAGE, durations="6")
    swap = build_request(Mode.SWAP, video=VIDEO, prompt="p")
    add = build_request(Mode.ADD, video=VIDEO, image=IMAGE)
    assert (price(frames, prices), price(swap, prices), price(add, prices)) == (18, 0, 20)


def test_the_defaults_themselves_are_configurable() -> None:
    prices = PriceList(clip_5s={"480p": 1, "720p": 2, "1080p": 3}, flat=5)
    request = build_request(Mode.ANIMATE, image=IMAGE, prompt="p", duration=10)
    assert price(request, prices) == 4
    assert price(build_request(Mode.EFFECT, image=IMAGE, effect="Poke"), prices) == 5


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"flat": -1}, "greater than or equal to 0"),
        ({"clip_5s": {"480p": 1, "720p": -2, "1080p": 3}}, "greater than or equal to 0"),
        ({"clip_5s": {"720p": 2, "1080p": 3}}, "exactly 480p, 720p or 1080p"),
        ({"frames_per_second": {"720p": 4, "1080p": 9, "4k": 20}}, "exactly 720p or 1080p"),
        ({"overrides": {"fal-ai/pika/v9/text-to-video": {"720p/5s": 1}}}, "unknown endpoint"),
        ({"overrides": {"fal-ai/pika/v2.2/text-to-video": {"480p/5s": 1}}}, "unknown key"),
        ({"overrides": {"fal-ai/pika/v2.2/pikaframes": {"720p/5s": 1}}}, "720p/per_second"),
        ({"overrides": {"fal-ai/pika/v2/pikadditions": {"flat": -3}}}, "greater than or equal"),
        ({"price_per_clip": 3}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_price_list_fails_loudly_naming_the_setting(
    settings: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValidationError, match=words):
        PriceList.model_validate(settings)


def test_a_price_list_loads_from_plain_data_as_a_settings_file_gives_it() -> None:
    prices = PriceList.model_validate(
        {"flat": "25", "overrides": {"fal-ai/pika/v1.5/pikaffects": {"flat": 30}}}
    )
    assert price(build_request(Mode.EFFECT, image=IMAGE, effect="Melt"), prices) == 30
    assert price(build_request(Mode.ADD, video=VIDEO, image=IMAGE), prices) == 25


def test_price_keys_per_kind_of_endpoint() -> None:
    assert price_keys(endpoint_for(Mode.TEXT)) == (
        "480p/5s", "480p/10s", "720p/5s", "720p/10s", "1080p/5s", "1080p/10s",
    )  # fmt: skip
    assert price_keys(endpoint_for(Mode.FRAMES)) == ("720p/per_second", "1080p/per_second")
    assert price_keys(endpoint_for(Mode.SWAP)) == ("flat",)


def test_price_table_lists_every_price_in_effect() -> None:
    prices = PriceList(overrides={"fal-ai/pika/v2.2/pikascenes": {"720p/10s": 33}})
    rows = price_table(prices)
    assert len(rows) == sum(len(price_keys(e)) for e in ENDPOINTS)
    by_key = {(row.endpoint.id, row.key): row for row in rows}
    scenes = by_key["fal-ai/pika/v2.2/pikascenes", "720p/10s"]
    assert (scenes.credits, scenes.resolution, scenes.duration, scenes.label) == (
        33,
        "720p",
        10,
        "720p, 10 s",
    )
    frames = by_key["fal-ai/pika/v2.2/pikaframes", "1080p/per_second"]
    assert (frames.credits, frames.per_second, frames.label) == (9, True, "1080p, per second")
    effect = by_key["fal-ai/pika/v1.5/pikaffects", "flat"]
    assert (effect.credits, effect.resolution, effect.label) == (20, None, "any")
    assert by_key["fal-ai/pika/v2.5/text-to-video", "480p/10s"].credits == 20
