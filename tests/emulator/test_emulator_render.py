"""The preview renderer on its own: sizes, motion, keyframe order, padding, unreadable inputs."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from PIL import Image

from bot.emulator.render import (
    InputUnreadable,
    PreviewSettings,
    RenderInputs,
    decode_image,
    decode_video,
    output_size_for,
    render_preview,
)
from bot.emulator.schemas import ASPECT_RATIOS, validate

SETTINGS = PreviewSettings(short_side=64, fps=8, seconds=1.0)


def _frames(path: Path) -> list[Image.Image]:
    with av.open(str(path), mode="r") as container:
        return [frame.to_image() for frame in container.decode(video=0)]  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("aspect", ASPECT_RATIOS)
def test_text_previews_follow_the_aspect_ratio_with_even_sides(aspect: str) -> None:
    job = validate("fal-ai/pika/v2.2/text-to-video", {"prompt": "p", "aspect_ratio": aspect})

    width, height = output_size_for(RenderInputs(job=job), SETTINGS)

    w, h = (int(x) for x in aspect.split(":"))
    assert min(width, height) == 64
    assert width % 2 == height % 2 == 0
    assert width / height == pytest.approx(w / h, rel=0.05)


def test_title_card_moves(tmp_path: Path) -> None:
    job = validate("fal-ai/pika/v2.5/text-to-video", {"prompt": "a moving title"})
    path = tmp_path / "t.mp4"

    render_preview(RenderInputs(job=job), SETTINGS, path)

    frames = _frames(path)
    assert len(frames) == SETTINGS.frame_count
    assert frames[0].tobytes() != frames[len(frames) // 2].tobytes()


def test_frames_fade_from_the_first_keyframe_to_the_last(tmp_path: Path) -> None:
    job = validate("fal-ai/pika/v2.2/pikaframes", {"image_urls": ["data:,a", "data:,b", "data:,c"]})
    keys = [
        Image.new("RGB", (128, 128), colour) for colour in ((250, 0, 0), (0, 250, 0), (0, 0, 250))
    ]
    path = tmp_path / "f.mp4"

    render_preview(RenderInputs(job=job, images=keys), SETTINGS, path)

    frames = _frames(path)
    first, last = frames[0].getpixel((32, 10)), frames[-1].getpixel((32, 10))
    assert isinstance(first, tuple)
    assert isinstance(last, tuple)
    assert first[0] > 200 > first[2]
    assert last[2] > 200 > last[0]


def test_output_size_pads_exactly_and_the_file_still_decodes(tmp_path: Path) -> None:
    job = validate("fal-ai/pika/v2.5/text-to-video", {"prompt": "p"})
    path = tmp_path / "big.mp4"

    size = render_preview(RenderInputs(job=job), SETTINGS, path, output_size=2_000_000)

    assert size == path.stat().st_size == 2_000_000
    assert len(_frames(path)) == SETTINGS.frame_count


def test_unreadable_inputs_raise_input_unreadable_naming_the_field() -> None:
    with pytest.raises(InputUnreadable, match=r"^image_url "):
        decode_image(b"GIF89a-not-really", "image_url")
    with pytest.raises(InputUnreadable, match=r"^video_url "):
        decode_video(b"\x00\x00\x00\x18ftypmp42 broken", "video_url")


def test_decode_image_applies_exif_orientation() -> None:
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = image.getexif()
    exif[0x0112] = 6  # rotated 90°: the picture is really 20x40
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)

    assert decode_image(buffer.getvalue(), "image_url").size == (20, 40)
