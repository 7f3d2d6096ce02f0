"""Videos are refused by their bytes with reasons; probe and last_frame read our own files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from bot.media import (
    InputRejected,
    Limits,
    VideoInfo,
    VideoUnreadable,
    last_frame,
    precheck_video,
    probe,
    validate_video,
)

from .conftest import Samples, growing_mp4

ALLOWED = "videos must be MP4, MOV or WebM."


def rejection(field: str, data: bytes | Path, limits: Limits | None = None) -> str:
    with pytest.raises(InputRejected) as caught:
        validate_video(field, data, limits or Limits())
    return caught.value.message


def test_accepts_a_short_mp4_from_bytes(samples: Samples) -> None:
    path = samples.video("a.mp4", size=(160, 96), fps=12, frames=24)
    info = validate_video("video", path.read_bytes())
    assert info == VideoInfo(
        content_type="video/mp4",
        width=160,
        height=96,
        duration_s=2.0,
        container="mp4",
        has_audio=False,
    )


def test_accepts_a_mov_from_a_path(samples: Samples) -> None:
    path = samples.video("a.mov", fmt="mov", frames=12, audio=True)
    info = validate_video("video", path)
    assert (info.content_type, info.container, info.has_audio) == ("video/quicktime", "mov", True)
    assert info.duration_s == pytest.approx(1.0, abs=0.05)


def test_accepts_a_webm(samples: Samples) -> None:
    path = samples.video("a.webm", fmt="webm", codec="libvpx", frames=6, options={})
    info = validate_video("video", path.read_bytes())
    assert (info.content_type, info.container) == ("video/webm", "webm")
    assert info.duration_s == pytest.approx(0.5, abs=0.05)


def test_video_over_30_seconds_is_refused_with_its_length(samples: Samples) -> None:
    path = samples.video("long.mp4", size=(64, 64), fps=1, frames=31)
    assert rejection("video", path) == "video is 31 s long; videos may be at most 30 s."


def test_two_minute_video_is_said_in_minutes(samples: Samples) -> None:
    path = samples.video("longer.mp4", size=(64, 64), fps=1, frames=120)
    assert rejection("video", path) == "video is 2 min 0 s long; videos may be at most 30 s."


def test_an_image_passed_as_video_is_refused(samples: Samples) -> None:
    png = samples.image("PNG", (300, 300))
    assert rejection("video", png) == f"video is a PNG image; {ALLOWED}"


def test_mkv_is_refused_by_its_bytes(samples: Samples) -> None:
    path = samples.video("a.mkv", fmt="matroska", frames=2)
    assert rejection("video", path) == f"video is an MKV; {ALLOWED}"


def test_empty_and_text_files_are_named() -> None:
    assert rejection("video", b"") == f"video is an empty file; {ALLOWED}"
    assert rejection("video", b"not a video\n") == f"video is a text file, not a video; {ALLOWED}"


def test_truncated_mp4_is_refused_as_damaged(samples: Samples) -> None:
    data = samples.video("cut.mp4", frames=24, noise=True).read_bytes()
    # PyAV writes the index (moov) last, so half a file has no index at all.
    assert rejection("video", data[: len(data) // 2]) == (
        "video is a damaged or incomplete MP4 file; please upload it again or export it as "
        "MP4, MOV or WebM."
    )


def test_cut_off_mp4_with_index_first_is_refused_as_incomplete(samples: Samples) -> None:
    path = samples.video(
        "fast.mp4", frames=24, noise=True, container_options={"movflags": "faststart"}
    )
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    message = rejection("video", data[: len(data) // 2])
    assert message == "video is an incomplete MP4 file (it ends early); please upload it again."


def test_garbled_mp4_is_refused(samples: Samples) -> None:
    data = bytearray(samples.video("garbled.mp4", frames=12).read_bytes())
    # Keep the ftyp box so it still sniffs as MP4; scramble everything after it.
    data[32:] = os.urandom(len(data) - 32)
    assert "damaged" in rejection("video", bytes(data))


def test_mp4_with_only_sound_is_refused(samples: Samples) -> None:
    path = samples.video("sound.mp4", video=False, audio=True, frames=12)
    assert rejection("video", path) == (
        "video has no video track; it must be a video, not only sound."
    )


def test_frame_count_bounds_the_work(samples: Samples) -> None:
    path = samples.video("many.mp4", frames=24)
    message = rejection("video", path, Limits(video_max_frames=10))
    assert message == "video has more than 10 frames; videos may be at most 30 s long."


def test_oversized_video_is_refused_by_size(samples: Samples) -> None:
    path = samples.video("big.mp4", frames=12, noise=True)
    message = rejection("video", path, Limits(video_max_bytes=1024))
    assert message.endswith("; videos may be at most 1 KiB.")


def test_frame_size_above_the_bound_is_refused(samples: Samples) -> None:
    path = samples.video("wide.mp4", size=(320, 64), frames=2)
    message = rejection("video", path, Limits(video_max_side=256))
    assert message == "video is 320×64 px; each side may be at most 256 px."


def test_precheck_video_refuses_declared_types_and_sizes() -> None:
    precheck_video("video", content_type="video/quicktime", size=10_000_000)
    with pytest.raises(InputRejected) as caught:
        precheck_video("video", content_type="image/png", size=10)
    assert caught.value.message == f"video was sent as a PNG image; {ALLOWED}"
    with pytest.raises(InputRejected) as caught:
        precheck_video("video", content_type="video/mp4", size=60 * 1024 * 1024)
    assert caught.value.message == "video is 60 MiB; videos may be at most 50 MiB."


# probe and last_frame read the bot's own files.


def test_probe_reports_size_duration_and_frame_size(samples: Samples) -> None:
    path = samples.video("p.mp4", size=(160, 96), fps=12, frames=18, audio=True)
    found = probe(path)
    assert (found.width, found.height, found.has_audio) == (160, 96, True)
    assert found.duration_s == pytest.approx(1.5, abs=0.05)
    assert found.size_bytes == path.stat().st_size
    assert found.fps == pytest.approx(12)


def luma_of(png: bytes) -> int:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    grey = image.convert("L")
    return int(grey.getpixel((grey.width // 2, grey.height // 2)))  # type: ignore[arg-type]


@pytest.mark.parametrize("frames", [6, 30])  # under 1.5 s decodes all; over it seeks
def test_last_frame_is_the_final_picture(samples: Samples, frames: int) -> None:
    path = samples.video("grey.mp4", size=(64, 64), fps=12, frames=frames)
    png = last_frame(path)
    # The PNG is full-range RGB of the last frame's video-range grey.
    expected = round((samples.grey_level(frames - 1) - 16) * 255 / 219)
    assert Image.open(io.BytesIO(png)).size == (64, 64)
    assert abs(luma_of(png) - expected) <= 6


def test_last_frame_of_a_non_video_raises(tmp_path: Path) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(b"nothing to see")
    with pytest.raises(VideoUnreadable):
        last_frame(path)


def test_a_frame_larger_than_the_header_says_is_refused() -> None:
    # The header and first picture are 64×64; a later keyframe's SPS makes it 4160×64.
    data = growing_mp4((64, 64), (4160, 64))
    message = rejection("video", data)
    assert message == "video is 4160×64 px; each side may be at most 4096 px."


def test_a_frame_size_change_within_the_limits_is_refused() -> None:
    message = rejection("video", growing_mp4((64, 64), (128, 64)))
    assert message == (
        "video changes its frame size part way (from 64×64 to 128×64 px); "
        "please export it again at one size."
    )


def test_a_frame_past_the_decoders_pixel_cap_is_never_decoded() -> None:
    # 2048×2048 is within each side's bound but over the pixel cap these limits give the
    # decoder (1024×1024): FFmpeg refuses to allocate it, and the video is refused.
    message = rejection(
        "video", growing_mp4((64, 64), (2048, 2048), 2), Limits(video_max_side=1024)
    )
    assert message == (
        "video has pictures we could not decode (damaged, or larger than 1024×1024 px); "
        "please export it again."
    )


def test_last_frame_never_decodes_a_picture_past_the_pixel_cap(tmp_path: Path) -> None:
    path = tmp_path / "grows.mp4"
    path.write_bytes(growing_mp4((64, 64), (512, 512), 2))
    with pytest.raises(VideoUnreadable):
        last_frame(path, max_side=256)
