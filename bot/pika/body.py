"""The exact JSON body fal expects for a request, with its input files' URLs filled in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, assert_never

from bot.pika.errors import MissingInputUrl
from bot.pika.requests import (
    AddRequest,
    AnimateRequest,
    EffectRequest,
    FramesRequest,
    InputRef,
    PikaRequest,
    ScenesRequest,
    SwapRequest,
    TextRequest,
)

# fal renamed pikascenes' image list (from `images: [{image_url}]` to `image_urls: [url]`,
# FAL.md "Seed corrections"); the name lives here alone so it can follow the schema again.
SCENES_IMAGES_FIELD = "image_urls"


def to_fal_body(request: PikaRequest, urls: Mapping[str, str]) -> dict[str, Any]:
    """The body to POST to `request.endpoint.id`; `urls` maps each input's sha256 to its URL.

    Unset options are left out so fal's defaults apply; durations are integers.
    """

    def url(ref: InputRef) -> str:
        try:
            return urls[ref.sha256]
        except KeyError:
            raise MissingInputUrl(ref.sha256) from None

    body: dict[str, Any]
    match request:
        case TextRequest():
            body = {
                "prompt": request.prompt,
                "aspect_ratio": request.aspect_ratio,
                "resolution": request.resolution,
                "duration": request.duration,
            }
        case AnimateRequest():
            body = {
                "image_url": url(request.image),
                "prompt": request.prompt,
                "resolution": request.resolution,
                "duration": request.duration,
            }
        case FramesRequest():
            transitions = None
            if request.transitions is not None:
                transitions = [
                    _without_none({"duration": t.duration, "prompt": t.prompt})
                    for t in request.transitions
                ]
            body = {
                "image_urls": [url(ref) for ref in request.images],
                "prompt": request.prompt,
                "transitions": transitions,
                "resolution": request.resolution,
            }
        case ScenesRequest():
            body = {
                SCENES_IMAGES_FIELD: [url(ref) for ref in request.images],
                "prompt": request.prompt,
                "ingredients_mode": request.ingredients_mode,
                "aspect_ratio": request.aspect_ratio,
                "resolution": request.resolution,
                "duration": request.duration,
            }
        case EffectRequest():
            body = {
                "image_url": url(request.image),
                "pikaffect": request.effect,
                "prompt": request.prompt,
            }
        case SwapRequest():
            body = {
                "video_url": url(request.video),
                "image_url": None if request.image is None else url(request.image),
                "modify_region": request.region,
                "prompt": request.prompt,
            }
        case AddRequest():
            body = {
                "video_url": url(request.video),
                "image_url": url(request.image),
                "prompt": request.prompt,
            }
        case _:
            assert_never(request)
    body["negative_prompt"] = request.negative_prompt
    body["seed"] = request.seed
    return _without_none(body)


def _without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}
