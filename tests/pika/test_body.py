"""to_fal_body: exactly the JSON fal expects, per endpoint."""

from typing import Any

import pytest

from bot.pika import (
    SCENES_IMAGES_FIELD,
    InputRef,
    MissingInputUrl,
    build_request,
    to_fal_body,
)

IMAGES = [InputRef(sha256=f"{n:064x}", content_type="image/png") for n in range(1, 7)]
VIDEO = InputRef(sha256="f" * 64, content_type="video/mp4")
URLS = {ref.sha256: f"https://fal.media/files/in{n}.png" for n, ref in enumerate(IMAGES, 1)}
URLS[VIDEO.sha256] = "data:video/mp4;base64,AAAA"


def body(mode: str, **options: Any) -> dict[str, Any]:
    return to_fal_body(build_request(mode, **options), URLS)


def test_text_v25_with_every_option() -> None:
    assert body(
        "text",
        prompt=" a fox ",
        negative_prompt="blur",
        resolution="480p",
        duration="10",
        seed=12,
    ) == {
        "prompt": "a fox",
        "negative_prompt": "blur",
        "resolution": "480p",
        "duration": 10,
        "seed": 12,
    }


def test_text_with_only_a_prompt_sends_only_the_prompt() -> None:
    assert body("text", prompt="a fox") == {"prompt": "a fox"}


def test_text_v22_sends_aspect_ratio() -> None:
    assert body("text", prompt="a fox", model="v2.2", aspect_ratio="9:16", duration=5) == {
        "prompt": "a fox",
        "aspect_ratio": "9:16",
        "duration": 5,
    }


def test_animate() -> None:
    assert body(
        "animate", image=IMAGES[0], prompt="smile", resolution="1080p", duration=5, seed=0
    ) == {
        "image_url": "https://fal.media/files/in1.png",
        "prompt": "smile",
        "resolution": "1080p",
        "duration": 5,
        "seed": 0,
    }


def test_frames_with_transitions() -> None:
    assert body(
        "frames",
        image1=IMAGES[0],
        image2=IMAGES[1],
        image3=IMAGES[2],
        prompt="smooth",
        durations="3,7",
        prompts="|spin",
        negative_prompt="jitter",
        resolution="1080p",
        seed=5,
    ) == {
        "image_urls": ["https://fal.media/files/in1.png", "https://fal.media/files/in2.png",
                       "https://fal.media/files/in3.png"],
        "prompt": "smooth",
        "transitions": [{"duration": 3}, {"duration": 7, "prompt": "spin"}],
        "negative_prompt": "jitter",
        "resolution": "1080p",
        "seed": 5,
    }  # fmt: skip


def test_frames_without_durations_or_prompts_lets_fal_apply_its_defaults() -> None:
    assert body("frames", image1=IMAGES[0], image2=IMAGES[1]) == {
        "image_urls": ["https://fal.media/files/in1.png", "https://fal.media/files/in2.png"]
    }


def test_scenes_sends_image_urls() -> None:
    assert SCENES_IMAGES_FIELD == "image_urls"
    assert body(
        "scenes",
        image1=IMAGES[0],
        image2=IMAGES[1],
        prompt="a duck and a man",
        ingredients_mode="creative",
        aspect_ratio="1:1",
        resolution="720p",
        duration=10,
        negative_prompt="ugly",
        seed=99,
    ) == {
        "image_urls": ["https://fal.media/files/in1.png", "https://fal.media/files/in2.png"],
        "prompt": "a duck and a man",
        "ingredients_mode": "creative",
        "aspect_ratio": "1:1",
        "resolution": "720p",
        "duration": 10,
        "negative_prompt": "ugly",
        "seed": 99,
    }


def test_effect_sends_pikaffect() -> None:
    assert body("effect", image=IMAGES[0], effect="ta-da", prompt="party") == {
        "image_url": "https://fal.media/files/in1.png",
        "pikaffect": "Ta-da",
        "prompt": "party",
    }


def test_swap_sends_video_image_and_modify_region() -> None:
    assert body(
        "swap", video=VIDEO, image=IMAGES[1], region="the hat", prompt="a crown", seed=3
    ) == {
        "video_url": "data:video/mp4;base64,AAAA",
        "image_url": "https://fal.media/files/in2.png",
        "modify_region": "the hat",
        "prompt": "a crown",
        "seed": 3,
    }


def test_swap_with_a_prompt_only_sends_no_image_url() -> None:
    assert body("swap", video=VIDEO, prompt="a crown") == {
        "video_url": "data:video/mp4;base64,AAAA",
        "prompt": "a crown",
    }


def test_add_sends_video_and_image() -> None:
    assert body("add", video=VIDEO, image=IMAGES[2], negative_prompt="blur") == {
        "video_url": "data:video/mp4;base64,AAAA",
        "image_url": "https://fal.media/files/in3.png",
        "negative_prompt": "blur",
    }


def test_the_same_image_twice_uses_its_one_url_twice() -> None:
    assert (
        body("frames", image1=IMAGES[0], image2=IMAGES[0])["image_urls"]
        == ["https://fal.media/files/in1.png"] * 2
    )


def test_a_missing_url_is_reported_without_building_a_body() -> None:
    request = build_request("animate", image=IMAGES[0], prompt="p")
    with pytest.raises(MissingInputUrl) as caught:
        to_fal_body(request, {})
    assert caught.value.sha256 == IMAGES[0].sha256


@pytest.mark.parametrize(
    ("mode", "options", "inputs"),
    [
        ("text", {"prompt": "p"}, []),
        ("animate", {"image": IMAGES[0], "prompt": "p"}, [IMAGES[0]]),
        ("frames", {"image1": IMAGES[2], "image2": IMAGES[0]}, [IMAGES[2], IMAGES[0]]),
        ("scenes", {"image1": IMAGES[0], "image4": IMAGES[3], "prompt": "p"},
         [IMAGES[0], IMAGES[3]]),
        ("effect", {"image": IMAGES[1], "effect": "Melt"}, [IMAGES[1]]),
        ("swap", {"video": VIDEO, "prompt": "p"}, [VIDEO]),
        ("swap", {"video": VIDEO, "image": IMAGES[1]}, [VIDEO, IMAGES[1]]),
        ("add", {"video": VIDEO, "image": IMAGES[1]}, [VIDEO, IMAGES[1]]),
    ],
)  # fmt: skip
def test_inputs_lists_the_files_in_order(
    mode: str, options: dict[str, Any], inputs: list[InputRef]
) -> None:
    assert build_request(mode, **options).inputs == inputs


@pytest.mark.parametrize(
    ("mode", "options", "endpoint_id"),
    [
        ("text", {"prompt": "p", "model": "v2-turbo"}, "fal-ai/pika/v2/turbo/text-to-video"),
        ("animate", {"image": IMAGES[0], "prompt": "p", "model": "v2.1"},
         "fal-ai/pika/v2.1/image-to-video"),
        ("frames", {"image1": IMAGES[0], "image2": IMAGES[1]}, "fal-ai/pika/v2.2/pikaframes"),
        ("scenes", {"image1": IMAGES[0], "prompt": "p"}, "fal-ai/pika/v2.2/pikascenes"),
        ("effect", {"image": IMAGES[0], "effect": "Melt"}, "fal-ai/pika/v1.5/pikaffects"),
        ("swap", {"video": VIDEO, "prompt": "p"}, "fal-ai/pika/v2/pikaswaps"),
        ("add", {"video": VIDEO, "image": IMAGES[0]}, "fal-ai/pika/v2/pikadditions"),
    ],
)  # fmt: skip
def test_each_request_knows_its_endpoint(
    mode: str, options: dict[str, Any], endpoint_id: str
) -> None:
    assert build_request(mode, **options).endpoint.id == endpoint_id
