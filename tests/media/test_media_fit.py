"""fit_to_limit re-encodes a video under a byte limit, playable inline, or says it cannot."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from bot.media import fit_to_limit, probe, validate_video

from .conftest import Samples

LIMIT = 1_000_000


@pytest.fixture
def heavy_video(samples: Samples) -> Path:
    """About 3.7 MB: 3 s of 640×360 noise at 10 Mbit/s, with a silent stereo track."""
    path = samples.video(
        "heavy.mp4",
        size=(640, 360),
        fps=24,
        frames=72,
        noise=True,
        audio=True,
        bit_rate=10_000_000,
        options={"preset": "ultrafast"},
    )
    assert 3_000_000 < path.stat().st_size < 5_000_000
    return path


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_fits_a_heavy_video_under_the_limit(heavy_video: Path, tmp_path: Path) -> None:
    dest = tmp_path / "fit.mp4"
    result = fit_to_limit(heavy_video, dest, LIMIT)
    assert result is not None
    assert result.path == dest
    assert result.size_bytes == dest.stat().st_size < LIMIT
    assert result.duration_s == pytest.approx(3.0, abs=0.1)
    assert result.width / result.height == pytest.approx(640 / 360, rel=0.02)
    assert result.width % 2 == 0
    assert result.height % 2 == 0
    assert result.has_audio
    assert decoded_frames(dest) == 72
    assert validate_video("video", dest).container == "mp4"
    assert leftovers(tmp_path) == ["fit.mp4", "heavy.mp4"]


def test_output_is_h264_yuv420p_with_aac_and_the_index_first(
    heavy_video: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "fit.mp4"
    assert fit_to_limit(heavy_video, dest, LIMIT) is not None
    with av.open(str(dest)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert container.streams.audio[0].codec_context.name == "aac"
    data = dest.read_bytes()
    # +faststart puts the moov index before the media so Discord can play it while loading.
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_a_tight_limit_lowers_the_resolution_keeping_the_aspect(
    samples: Samples, tmp_path: Path
) -> None:
    source = samples.video(
        "wide.mp4",
        size=(1280, 720),
        fps=12,
        frames=24,
        noise=True,
        bit_rate=8_000_000,
        options={"preset": "ultrafast"},
    )
    dest = tmp_path / "small.mp4"
    result = fit_to_limit(source, dest, 150_000)
    assert result is not None
    assert result.size_bytes < 150_000
    assert result.height < 720
    assert result.width / result.height == pytest.approx(16 / 9, rel=0.02)
    assert not result.has_audio
    found = probe(dest)
    assert (found.width, found.height) == (result.width, result.height)
    assert decoded_frames(dest) == 24


def test_an_impossible_limit_returns_none_and_writes_nothing(
    heavy_video: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "never.mp4"
    assert fit_to_limit(heavy_video, dest, 20_000) is None
    assert not dest.exists()
    assert leftovers(tmp_path) == ["heavy.mp4"]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())
