"""Requests survive JSON (the store keeps them so a restarted bot can resume), and revise."""

from typing import Any

import pytest

from bot.pika import (
    InputRef,
    InvalidRequest,
    TextRequest,
    build_request,
    dump_request,
    parse_request,
    revise,
)

IMAGE = InputRef(sha256="a" * 64, content_type="image/jpeg")
IMAGE2 = InputRef(sha256="b" * 64, content_type="image/webp")
VIDEO = InputRef(sha256="c" * 64, content_type="video/webm")

EVERY_MODE: list[tuple[str, dict[str, Any]]] = [
    ("text", {"prompt": "p", "negative_prompt": "n", "model": "v2.1", "aspect_ratio": "2:3",
              "resolution": "1080p", "duration": 10, "seed": 4294967295}),
    ("text", {"prompt": "p"}),
    ("animate", {"image": IMAGE, "prompt": "p", "model": "v2-turbo", "resolution": "720p",
                 "duration": 5, "seed": 1, "negative_prompt": "n"}),
    ("frames", {"image1": IMAGE, "image2": IMAGE2, "image3": IMAGE, "prompt": "p",
                "durations": "2,9", "prompts": "a|", "resolution": "1080p", "seed": 2}),
    ("frames", {"image1": IMAGE, "image2": IMAGE2}),
    ("scenes", {"image1": IMAGE, "image2": IMAGE2, "prompt": "p", "ingredients_mode": "precise",
                "aspect_ratio": "4:5", "resolution": "720p", "duration": 10, "seed": 3}),
    ("effect", {"image": IMAGE, "effect": "Squish", "prompt": "p", "negative_prompt": "n"}),
    ("swap", {"video": VIDEO, "image": IMAGE, "region": "sky", "prompt": "p", "seed": 4}),
    ("swap", {"video": VIDEO, "prompt": "p"}),
    ("add", {"video": VIDEO, "image": IMAGE, "prompt": "p", "negative_prompt": "n"}),
]  # fmt: skip


@pytest.mark.parametrize(("mode", "options"), EVERY_MODE)
def test_every_request_round_trips_through_json(mode: str, options: dict[str, Any]) -> None:
    request = build_request(mode, **options)
    again = parse_request(dump_request(request))
    assert again == request
    assert type(again) is type(request)
    assert again.endpoint == request.endpoint


@pytest.mark.parametrize(("mode", "options"), EVERY_MODE)
def test_stored_json_names_the_mode(mode: str, options: dict[str, Any]) -> None:
    assert f'"mode":"{mode}"' in dump_request(build_request(mode, **options))


def test_parse_request_accepts_a_mapping_and_bytes() -> None:
    request = build_request("text", prompt="p")
    assert parse_request(request.model_dump()) == request
    assert parse_request(dump_request(request).encode()) == request


def test_stored_json_that_breaks_a_rule_is_refused_readably() -> None:
    with pytest.raises(InvalidRequest, match=r"aspect_ratio isn't available with text model v2\.5"):
        parse_request('{"mode":"text","prompt":"p","model":"v2.5","aspect_ratio":"1:1"}')


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ('{"mode":"dance","prompt":"p"}', "There is no mode like that"),
        ('{"mode":"text","prompt":"p","colour":"red"}', "colour isn't an option here"),
        ('{"mode":"animate","prompt":"p"}', "image is required"),
        ('{"prompt":"p"}', "mode is required"),
        ('{"mode":"text","prompt":"p","seed":"x"}', "seed must be"),
        ("not json", "isn't valid JSON"),
    ],
)
def test_bad_stored_json_is_refused_readably(data: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(data)
    assert words in str(caught.value)
    assert "Input should" not in str(caught.value)


def test_requests_are_immutable() -> None:
    request = build_request("text", prompt="p")
    with pytest.raises(ValueError, match="frozen"):
        request.prompt = "q"  # type: ignore[misc]


def test_revise_changes_a_field_and_checks_it_like_new() -> None:
    request = build_request("text", prompt="p", model="v2.2", aspect_ratio="1:1")
    rerolled = revise(request, seed=77)
    assert isinstance(rerolled, TextRequest)
    assert (rerolled.seed, rerolled.prompt, rerolled.aspect_ratio) == (77, "p", "1:1")
    remixed = revise(request, prompt="  new  ", negative_prompt="")
    assert isinstance(remixed, TextRequest)
    assert (remixed.prompt, remixed.negative_prompt) == ("new", None)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"prompt": " "}, "prompt is empty"),
        ({"seed": 2**32}, "seed must be"),
        ({"model": "v2.5"}, "aspect_ratio isn't available with text model v2.5"),
    ],
)
def test_revise_refuses_what_a_new_request_would_refuse(
    changes: dict[str, Any], words: str
) -> None:
    request = build_request("text", prompt="p", model="v2.2", aspect_ratio="1:1")
    with pytest.raises(InvalidRequest, match=words):
        revise(request, **changes)


def test_revise_keeps_frames_transitions() -> None:
    request = build_request("frames", image1=IMAGE, image2=IMAGE2, durations="9", prompts="a")
    assert revise(request, seed=1) == request.model_copy(update={"seed": 1})


def test_input_refs_are_normalised_and_checked() -> None:
    ref = InputRef(sha256="A" * 64, content_type="Image/PNG; charset=binary")
    assert (ref.sha256, ref.content_type, ref.kind) == ("a" * 64, "image/png", "image")
    with pytest.raises(ValueError, match="sha256"):
        InputRef(sha256="xyz", content_type="image/png")
    with pytest.raises(ValueError, match="image/png or video/mp4"):
        InputRef(sha256="a" * 64, content_type="png")
