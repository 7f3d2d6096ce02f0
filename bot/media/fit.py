"""Re-encode a video so it fits under an upload limit and still plays inline in Discord."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.audio.stream
import av.container
import av.video.stream

from bot.media.limits import DEFAULT_LIMITS
from bot.media.videos import VideoProbe, VideoUnreadable, bound_decoder, probe

# Aim this far under the limit: x264's rate control overshoots a little on short clips.
SAFETY_MARGIN = 0.06
# Kept audio is AAC-LC at this rate: clear speech and music, a small share of any budget.
AUDIO_BITRATE = 64_000
# Short-side sizes tried in turn after the source's own; below 144 px nothing is watchable.
SHORT_SIDES = (1080, 720, 540, 480, 360, 270, 240, 180, 144)
# Bits per pixel per frame: at or above COMFORT_BPP H.264 looks clean, so the largest size
# that affords it wins; FLOOR_BPP is the least we accept at the smallest size before giving up.
COMFORT_BPP = 0.06
FLOOR_BPP = 0.02
MAX_ATTEMPTS = 4
# Frames per second we fall back on when a file does not say.
_DEFAULT_FPS = Fraction(30)


@dataclass(frozen=True, slots=True)
class FitResult:
    """The re-encoded file and what it became (video_bitrate is the target given to x264)."""

    path: Path
    size_bytes: int
    width: int
    height: int
    duration_s: float
    video_bitrate: int
    has_audio: bool
    attempts: int


def fitted_path(video: Path) -> Path:
    """Where the re-encoded copy of a video that had to fit a limit is kept, beside it."""
    return video.with_suffix(".fit.mp4")


def fit_to_limit(
    src: Path, dest: Path, limit_bytes: int, *, preset: str = "veryfast"
) -> FitResult | None:
    """Re-encode `src` into `dest` as an MP4 smaller than `limit_bytes`, or return None.

    BLOCKING and CPU-heavy: the caller runs it in a thread (`asyncio.to_thread`). It always
    re-encodes (callers check the size first): H.264 (libx264, `preset`), yuv420p, the
    `+faststart` flag so Discord can play it before it has the whole file, and the source's
    first audio track as AAC at 64 kbit/s (silent videos stay silent). The video bitrate comes
    from the duration and the limit, less the audio, a safety margin and the MP4 index; the
    frame size steps down (even sides, aspect kept) while that bitrate is too thin for it.
    If an encode still comes out too large the bitrate is lowered in proportion and it tries
    again. Returns None when even the smallest size (144 px short side) at the floor quality
    cannot fit; `dest` is then left untouched. The size is verified before returning.
    Raises VideoUnreadable if `src` cannot be read.
    """
    info = probe(src)
    if info.width <= 0 or info.height <= 0:
        raise VideoUnreadable(f"{src.name} has no frame size.")
    duration = max(info.duration_s, 0.1)
    fps = _fps(info)
    audio = AUDIO_BITRATE if info.has_audio else 0
    frames = duration * float(fps)
    # The MP4 index costs a few dozen bytes per video frame and per AAC frame.
    overhead = 16_384 + 40 * (frames + (duration * 48 if audio else 0))
    budget_bits = (limit_bytes * (1 - SAFETY_MARGIN) - overhead) * 8
    video_bps = int(budget_bits / duration) - audio

    sizes = _ladder(info.width, info.height)

    def comfortable_size(bps: int) -> int:
        """Index of the largest size this bitrate serves well, else the smallest size."""
        return next(
            (i for i, (w, h) in enumerate(sizes) if bps >= COMFORT_BPP * w * h * float(fps)),
            len(sizes) - 1,
        )

    index = comfortable_size(video_bps)
    attempts = 0
    temp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
    try:
        while index < len(sizes) and attempts < MAX_ATTEMPTS:
            width, height = sizes[index]
            if video_bps < FLOOR_BPP * width * height * float(fps):
                index += 1
                continue
            attempts += 1
            _encode(src, temp, width, height, fps, video_bps, audio, preset)
            size = temp.stat().st_size
            if size < limit_bytes:
                out = probe(temp)
                os.replace(temp, dest)
                return FitResult(
                    path=dest,
                    size_bytes=size,
                    width=out.width,
                    height=out.height,
                    duration_s=out.duration_s,
                    video_bitrate=video_bps,
                    has_audio=out.has_audio,
                    attempts=attempts,
                )
            # Too big: shrink the video share by the overshoot, with a little extra room.
            target_bits = limit_bytes * (1 - SAFETY_MARGIN) * 8
            video_bps = int((video_bps + audio) * target_bits / (size * 8) * 0.95) - audio
            index = max(index, comfortable_size(video_bps))
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _fps(info: VideoProbe) -> Fraction:
    if 1 <= info.fps <= 120:
        return Fraction(info.fps).limit_denominator(1001)
    return _DEFAULT_FPS


def _ladder(width: int, height: int) -> list[tuple[int, int]]:
    """The source size, then each standard short side below it, all with even sides."""
    short = min(width, height)
    sizes = [(_even(width), _even(height))]
    for side in SHORT_SIDES:
        if side >= short:
            continue
        scale = side / short
        sizes.append((_even(width * scale), _even(height * scale)))
    return sizes


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _encode(
    src: Path,
    dest: Path,
    width: int,
    height: int,
    fps: Fraction,
    video_bps: int,
    audio_bps: int,
    preset: str,
) -> None:
    with (
        av.open(str(src), metadata_errors="replace") as source,
        av.open(str(dest), "w", format="mp4", container_options={"movflags": "+faststart"}) as out,
    ):
        in_video = source.streams.video[0]
        bound_decoder(in_video, max_side=DEFAULT_LIMITS.video_max_side)
        out_video = out.add_stream(
            "libx264",
            rate=fps,
            options={
                "preset": preset,
                # A VBV cap keeps single-pass rate control close to the target on short clips.
                "maxrate": str(int(video_bps * 1.5)),
                "bufsize": str(int(video_bps * 2)),
            },
        )
        out_video.width = width
        out_video.height = height
        out_video.pix_fmt = "yuv420p"
        out_video.bit_rate = video_bps

        in_audio: av.audio.stream.AudioStream | None = None
        out_audio: av.audio.stream.AudioStream | None = None
        if audio_bps and source.streams.audio:
            in_audio = source.streams.audio[0]
            rate = in_audio.rate if in_audio.rate in (44_100, 48_000) else 48_000
            out_audio = out.add_stream("aac", rate=rate)
            out_audio.bit_rate = audio_bps
            out_audio.layout = "mono" if in_audio.channels == 1 else "stereo"

        frame_slot = 1 / fps
        first_time: Fraction | None = None
        last_pts = -1
        counter = 0
        for packet in source.demux(in_video, *([in_audio] if in_audio is not None else [])):
            if packet.stream is in_video:
                for frame in in_video.decode(packet):
                    # Re-time on the output's frame grid; drop frames that land on the same slot.
                    if frame.pts is not None and frame.time_base is not None:
                        seconds = frame.pts * frame.time_base
                        first_time = seconds if first_time is None else first_time
                        pts = round((seconds - first_time) * fps)
                    else:
                        pts = counter
                    counter += 1
                    if pts <= last_pts:
                        continue
                    last_pts = pts
                    scaled = frame.reformat(width=width, height=height, format="yuv420p")
                    scaled.pts = pts
                    scaled.time_base = frame_slot
                    out.mux(out_video.encode(scaled))
            elif in_audio is not None and out_audio is not None:
                for sound in in_audio.decode(packet):
                    # PyAV's encoder resamples to AAC's format, rate and frame size itself.
                    sound.pts = None
                    out.mux(out_audio.encode(sound))
        out.mux(out_video.encode(None))
        if out_audio is not None:
            out.mux(out_audio.encode(None))
