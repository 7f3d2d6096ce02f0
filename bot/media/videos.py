"""Read videos with PyAV: validate a member's video, probe a file, grab its last frame."""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import av.container
import av.video.stream
from PIL import Image

from bot.media.limits import (
    DEFAULT_LIMITS,
    InputRejected,
    Limits,
    check_video_dimensions,
    describe_kind,
    format_bytes,
    format_kinds,
    format_seconds,
)
from bot.media.sniff import CONTENT_TYPES, DISPLAY_NAMES, sniff

# FFmpeg demuxer for each kind we accept: forcing it means FFmpeg never probes the bytes as
# something else (a playlist that opens local files, an image sequence...).
_DEMUXERS = {"mp4": "mov", "mov": "mov", "webm": "matroska"}
# How many packets we feed the decoder looking for a first picture before calling it broken.
_FIRST_FRAME_PACKETS = 120
# Containers round durations; a "30 s" clip from a phone often measures 30.02 s.
_DURATION_SLACK_S = 0.1
# One decoding thread: FFmpeg's frame threads each hold frames of their own, so the thread count
# multiplies what one hostile file can make us allocate.
_DECODE_THREADS = 1


class VideoUnreadable(Exception):
    """One of our own video files (a result or an input on disk) cannot be read."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What an accepted video is."""

    content_type: str
    width: int
    height: int
    duration_s: float
    container: str
    has_audio: bool


@dataclass(frozen=True, slots=True)
class VideoProbe:
    """A video file's vital numbers, for deciding how to deliver it."""

    duration_s: float
    width: int
    height: int
    size_bytes: int
    has_audio: bool
    fps: float


def validate_video(
    field: str, data_or_path: bytes | Path, limits: Limits = DEFAULT_LIMITS
) -> VideoInfo:
    """Accept the member's `field` video (bytes or a file) or raise InputRejected saying why not.

    Blocking: run it in a thread. The work is bounded: the demuxer is forced to the sniffed
    container, at most `limits.video_max_frames` packets are read (and reading stops as soon
    as the video is known to be too long), and at most a few dozen packets are decoded.
    """
    allowed = format_kinds(limits.video_formats)
    if isinstance(data_or_path, Path):
        size = data_or_path.stat().st_size
        with data_or_path.open("rb") as fh:
            head = fh.read(4096)
    else:
        size = len(data_or_path)
        head = data_or_path[:4096]
    kind = sniff(head)
    if kind == "empty":
        raise InputRejected(f"{field} is an empty file; videos must be {allowed}.")
    if size > limits.video_max_bytes:
        raise InputRejected(
            f"{field} is {format_bytes(size)}; videos may be at most "
            f"{format_bytes(limits.video_max_bytes)}."
        )
    if kind not in limits.video_formats or kind not in _DEMUXERS:
        raise InputRejected(
            f"{field} is {describe_kind(kind, expected='video')}; videos must be {allowed}."
        )

    source: BinaryIO = (
        data_or_path.open("rb") if isinstance(data_or_path, Path) else io.BytesIO(data_or_path)
    )
    try:
        with _open(source, kind) as container:
            return _inspect(field, container, kind, limits)
    except InputRejected:
        raise
    except Exception:
        # FFmpeg and PyAV raise many types on hostile files; all mean the same to a member.
        raise InputRejected(
            f"{field} is a damaged or incomplete {DISPLAY_NAMES[kind]} file; "
            f"please upload it again or export it as {allowed}."
        ) from None
    finally:
        source.close()


def probe(path: Path) -> VideoProbe:
    """Measure a video file: duration, frame size, byte size, audio. Raises VideoUnreadable."""
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            if not container.streams.video:
                raise VideoUnreadable(f"{path.name} has no video track.")
            video = container.streams.video[0]
            duration = _header_duration(container, video)
            if duration is None:
                duration = _demuxed_duration(container, video)
            rate = video.average_rate or video.guessed_rate or Fraction(0)
            return VideoProbe(
                duration_s=duration or 0.0,
                width=video.codec_context.width,
                height=video.codec_context.height,
                size_bytes=path.stat().st_size,
                has_audio=bool(container.streams.audio),
                fps=float(rate),
            )
    except VideoUnreadable:
        raise
    except Exception as exc:
        raise VideoUnreadable(f"{path.name} could not be read as a video.") from exc


def last_frame(video_path: Path, *, max_side: int = DEFAULT_LIMITS.video_max_side) -> bytes:
    """Return the last decodable frame of a video as PNG bytes (for "Continue").

    Blocking: run it in a thread. It seeks to about a second before the end and decodes from
    there, so the cost does not grow with the video's length; if seeking finds nothing it
    decodes the whole video. No picture over `max_side`² pixels is decoded. Raises
    VideoUnreadable.
    """
    try:
        with av.open(str(video_path), metadata_errors="replace") as container:
            if not container.streams.video:
                raise VideoUnreadable(f"{video_path.name} has no video track.")
            video = container.streams.video[0]
            bound_decoder(video, max_side=max_side)
            frame: av.VideoFrame | None = None
            duration = _header_duration(container, video)
            if duration is not None and duration > 1.5 and video.time_base is not None:
                start = video.start_time or 0
                target = start + int((duration - 1.0) / video.time_base)
                try:
                    container.seek(target, stream=video, backward=True, any_frame=False)
                    frame = _decode_last(container, video)
                except av.FFmpegError:
                    frame = None
            if frame is None:
                container.seek(0)
                frame = _decode_last(container, video)
            if frame is None:
                raise VideoUnreadable(f"{video_path.name} has no decodable frame.")
            # PyAV's stub leaves to_image untyped; it returns a PIL image.
            image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    except VideoUnreadable:
        raise
    except Exception as exc:
        raise VideoUnreadable(f"{video_path.name} could not be read as a video.") from exc
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def bound_decoder(
    video: av.video.stream.VideoStream, *, max_side: int, keyframes_only: bool = False
) -> None:
    """Cap what decoding `video` may allocate; call it before the first decode opens the decoder.

    FFmpeg refuses to allocate a picture over `max_side`² pixels, whatever size a later SPS
    announces (the container's header only says the first). `keyframes_only` skips every other
    picture: a frame size can only change at a keyframe, and keyframes are cheap to count.
    """
    context = video.codec_context
    context.options = {**context.options, "max_pixels": str(max_side * max_side)}
    context.thread_count = _DECODE_THREADS
    if keyframes_only:
        context.skip_frame = "NONKEY"


def _open(source: BinaryIO, kind: str) -> av.container.InputContainer:
    return av.open(source, "r", format=_DEMUXERS[kind], metadata_errors="replace")


def _inspect(
    field: str, container: av.container.InputContainer, kind: str, limits: Limits
) -> VideoInfo:
    name = DISPLAY_NAMES[kind]
    if not container.streams.video:
        raise InputRejected(f"{field} has no video track; it must be a video, not only sound.")
    video = container.streams.video[0]
    width, height = video.codec_context.width, video.codec_context.height
    if width <= 0 or height <= 0:
        raise InputRejected(f"{field} is a damaged {name} file: its frame size is missing.")
    check_video_dimensions(field, width, height, limits)

    max_seconds = limits.video_max_seconds + _DURATION_SLACK_S
    time_base = video.time_base or Fraction(1, 1)
    first_ts: int | None = None
    last_end: int | None = None
    packets = 0
    pictures = _Pictures(field, (width, height), limits)
    bound_decoder(video, max_side=limits.video_max_side, keyframes_only=True)
    for packet in container.demux(video):
        if packet.pts is None and packet.dts is None and packet.size == 0:
            # The demuxer's final empty packet flushes frames the decoder still holds.
            pictures.decode(packet)
            continue
        packets += 1
        if packets > limits.video_max_frames:
            raise InputRejected(
                f"{field} has more than {limits.video_max_frames:,} frames; videos may be at "
                f"most {format_seconds(limits.video_max_seconds)} long."
            )
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is not None:
            first_ts = stamp if first_ts is None else min(first_ts, stamp)
            end = stamp + max(packet.duration or 0, 0)
            last_end = end if last_end is None else max(last_end, end)
            if float((last_end - first_ts) * time_base) > max_seconds:
                # No need to read the rest: it is already too long.
                break
        if packet.is_keyframe or (not pictures.decoded and pictures.tried < _FIRST_FRAME_PACKETS):
            pictures.decode(packet)

    header = _header_duration(container, video)
    if first_ts is not None and last_end is not None and last_end > first_ts:
        duration = float((last_end - first_ts) * time_base)
        if duration > max_seconds:
            # Reading stopped early; the header usually knows the whole length to report.
            duration = max(duration, header or 0.0)
    else:
        duration = header or 0.0
    if duration > max_seconds:
        raise InputRejected(
            f"{field} is {format_seconds(duration)} long; videos may be at most "
            f"{format_seconds(limits.video_max_seconds)}."
        )
    if duration <= 0:
        raise InputRejected(f"{field} is a damaged {name} file: its length cannot be read.")
    # An MP4/MOV index lists every frame; far fewer packets than listed means the file was cut
    # off. A little slack spares edit lists that hide a frame or two at the ends.
    if video.frames and packets < video.frames - max(2, video.frames // 50):
        raise InputRejected(
            f"{field} is an incomplete {name} file (it ends early); please upload it again."
        )
    if not pictures.decoded:
        raise InputRejected(
            f"{field} has no picture we could decode; please export it again as {name} "
            "with a common codec (H.264, HEVC, VP8/VP9 or AV1)."
        )
    if duration <= max_seconds:
        # Read to the end: every keyframe fed must have come out as a picture. One that did not
        # was damaged, or larger than the decoder's pixel cap (which FFmpeg skips in silence).
        pictures.check_all_came_out()
    return VideoInfo(
        content_type=CONTENT_TYPES[kind],
        width=width,
        height=height,
        duration_s=round(duration, 3),
        container=kind,
        has_audio=bool(container.streams.audio),
    )


class _Pictures:
    """The pictures decoded while a member's video is read: each one's size is checked."""

    def __init__(self, field: str, declared: tuple[int, int], limits: Limits) -> None:
        self.field = field
        self.declared = declared
        self.limits = limits
        self.tried = 0
        self.keyframes = 0
        self.decoded = 0

    def decode(self, packet: av.Packet[av.video.stream.VideoStream]) -> None:
        if packet.size:
            self.tried += 1
            if packet.is_keyframe:
                self.keyframes += 1
        try:
            frames = packet.decode()
        except av.FFmpegError:
            # A broken packet early on is not fatal; a later keyframe may still decode. Pictures
            # that never come out are counted at the end.
            return
        for frame in frames:
            self.decoded += 1
            self._check(frame.width, frame.height)

    def _check(self, width: int, height: int) -> None:
        check_video_dimensions(self.field, width, height, self.limits)
        if (width, height) != self.declared:
            old_w, old_h = self.declared
            raise InputRejected(
                f"{self.field} changes its frame size part way (from {old_w}×{old_h} to "
                f"{width}×{height} px); please export it again at one size."
            )

    def check_all_came_out(self) -> None:
        if self.decoded < self.keyframes:
            side = self.limits.video_max_side
            raise InputRejected(
                f"{self.field} has pictures we could not decode (damaged, or larger than "
                f"{side}×{side} px); please export it again."
            )


def _header_duration(
    container: av.container.InputContainer, video: av.video.stream.VideoStream
) -> float | None:
    if video.duration and video.time_base is not None:
        return float(video.duration * video.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _demuxed_duration(
    container: av.container.InputContainer, video: av.video.stream.VideoStream
) -> float | None:
    time_base = video.time_base or Fraction(1, 1)
    first: int | None = None
    last: int | None = None
    for packet in container.demux(video):
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None:
            continue
        first = stamp if first is None else min(first, stamp)
        end = stamp + max(packet.duration or 0, 0)
        last = end if last is None else max(last, end)
    if first is None or last is None:
        return None
    return float((last - first) * time_base)


def _decode_last(
    container: av.container.InputContainer, video: av.video.stream.VideoStream
) -> av.VideoFrame | None:
    last: av.VideoFrame | None = None
    for frame in container.decode(video):
        last = frame
    return last
