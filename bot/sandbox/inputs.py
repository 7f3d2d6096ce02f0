"""The sandbox member's uploads, drawn in code: a few recognisable pictures and a short clip."""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from math import cos, pi, sin

import av
from PIL import Image, ImageDraw, ImageFont

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Upload:
    """One file the member attaches: its name, bytes, type and (for pictures) size."""

    filename: str
    data: bytes
    content_type: str
    width: int | None = None
    height: int | None = None


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _png(image: Image.Image, filename: str) -> Upload:
    out = io.BytesIO()
    image.save(out, "PNG")
    return Upload(filename, out.getvalue(), "image/png", image.width, image.height)


def _caption(draw: ImageDraw.ImageDraw, side: int, text: str) -> None:
    size = max(12, side // 12)
    draw.text((side // 2, side - size), text, fill="white", font=_font(size), anchor="ms")


def sunset(side: int) -> Upload:
    """A sun setting behind two hills: the picture to animate."""
    image = Image.new("RGB", (side, side))
    draw = ImageDraw.Draw(image)
    for y in range(side):
        shade = y / side
        draw.line([(0, y), (side, y)], fill=(255, int(120 + 80 * shade), int(60 + 120 * shade)))
    s = side / 16
    draw.ellipse((5 * s, 5 * s, 11 * s, 11 * s), fill=(255, 220, 90))
    draw.polygon([(0, 10 * s), (6 * s, 7 * s), (12 * s, 11 * s), (0, side)], fill=(60, 110, 60))
    draw.polygon([(4 * s, side), (11 * s, 8 * s), (side, 10 * s), (side, side)], fill=(40, 90, 50))
    _caption(draw, side, "sunset")
    return _png(image, "sunset.png")


def keyframe(side: int, step: int, steps: int) -> Upload:
    """One keyframe of a ball rolling left to right while the sky turns from day to night."""
    t = step / max(1, steps - 1)
    sky: Colour = (int(120 - 100 * t), int(190 - 160 * t), int(255 - 165 * t))
    image = Image.new("RGB", (side, side), sky)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, side * 3 // 4, side, side), fill=(90, 160, 70))
    radius = side // 8
    x = int(radius + t * (side - 2 * radius))
    y = side * 3 // 4 - radius
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(230, 60, 50))
    _caption(draw, side, f"keyframe {step + 1}")
    return _png(image, f"keyframe{step + 1}.png")


def cat(side: int) -> Upload:
    """A ginger cat's face: a scene ingredient (a character)."""
    image = Image.new("RGB", (side, side), (245, 240, 225))
    draw = ImageDraw.Draw(image)
    s = side / 16
    ginger = (235, 140, 50)
    draw.polygon([(3 * s, 6 * s), (4 * s, 1 * s), (7 * s, 4 * s)], fill=ginger)
    draw.polygon([(13 * s, 6 * s), (12 * s, 1 * s), (9 * s, 4 * s)], fill=ginger)
    draw.ellipse((3 * s, 3 * s, 13 * s, 13 * s), fill=ginger)
    for cx in (6 * s, 10 * s):
        draw.ellipse((cx - s, 6.5 * s, cx + s, 8.5 * s), fill=(40, 160, 60))
    draw.polygon([(7.3 * s, 9.5 * s), (8.7 * s, 9.5 * s), (8 * s, 10.3 * s)], fill=(200, 80, 90))
    _caption(draw, side, "cat")
    return _png(image, "cat.png")


def beach(side: int) -> Upload:
    """Sea, sand and a parasol: a scene ingredient (a place)."""
    image = Image.new("RGB", (side, side), (150, 210, 250))
    draw = ImageDraw.Draw(image)
    s = side / 16
    draw.rectangle((0, 7 * s, side, 10 * s), fill=(30, 120, 190))
    draw.rectangle((0, 10 * s, side, side), fill=(240, 215, 150))
    draw.line([(11 * s, 6 * s), (11 * s, 13 * s)], fill=(90, 60, 40), width=max(2, side // 64))
    draw.pieslice((7 * s, 4 * s, 15 * s, 9 * s), 180, 360, fill=(230, 70, 80))
    _caption(draw, side, "beach")
    return _png(image, "beach.png")


def teapot(side: int) -> Upload:
    """A round blue teapot: the object an effect is applied to."""
    image = Image.new("RGB", (side, side), (250, 245, 235))
    draw = ImageDraw.Draw(image)
    s = side / 16
    blue = (60, 100, 200)
    draw.ellipse((4 * s, 5 * s, 12 * s, 13 * s), fill=blue)
    draw.polygon([(12 * s, 8 * s), (15 * s, 5.5 * s), (14.5 * s, 7 * s), (12 * s, 10 * s)], blue)
    draw.arc((1.5 * s, 6.5 * s, 5.5 * s, 11 * s), 90, 270, fill=blue, width=max(2, side // 40))
    draw.ellipse((7 * s, 3.5 * s, 9 * s, 5.5 * s), fill=(40, 70, 160))
    _caption(draw, side, "teapot")
    return _png(image, "teapot.png")


def star(side: int) -> Upload:
    """A yellow star: what the swap puts into the clip."""
    image = Image.new("RGB", (side, side), (30, 30, 60))
    draw = ImageDraw.Draw(image)
    centre, outer, inner = side / 2, side * 0.42, side * 0.17
    points = []
    for n in range(10):
        radius = outer if n % 2 == 0 else inner
        angle = -pi / 2 + n * pi / 5
        points.append((centre + radius * cos(angle), centre + radius * sin(angle)))
    draw.polygon(points, fill=(250, 210, 40))
    _caption(draw, side, "star")
    return _png(image, "star.png")


def balloon(side: int) -> Upload:
    """A red balloon on a string: what the add puts into the clip."""
    image = Image.new("RGB", (side, side), (235, 245, 255))
    draw = ImageDraw.Draw(image)
    s = side / 16
    draw.line([(8 * s, 10 * s), (7 * s, 15 * s)], fill=(80, 80, 80), width=max(1, side // 128))
    draw.ellipse((5 * s, 2 * s, 11 * s, 10 * s), fill=(220, 40, 50))
    draw.ellipse((6 * s, 3.5 * s, 7 * s, 5 * s), fill=(250, 150, 150))
    _caption(draw, side, "balloon")
    return _png(image, "balloon.png")


def flower(side: int) -> Upload:
    """A daisy: the picture the member posts and animates from the message menu."""
    image = Image.new("RGB", (side, side), (200, 230, 200))
    draw = ImageDraw.Draw(image)
    s = side / 16
    draw.line([(8 * s, 9 * s), (8 * s, 16 * s)], fill=(40, 130, 40), width=max(2, side // 48))
    for dx, dy in ((0, -2.2), (0, 2.2), (-2.2, 0), (2.2, 0), (1.6, 1.6), (-1.6, -1.6)):
        cx, cy = (8 + dx) * s, (7 + dy) * s
        draw.ellipse((cx - 1.6 * s, cy - 1.6 * s, cx + 1.6 * s, cy + 1.6 * s), fill="white")
    draw.ellipse((6.6 * s, 5.6 * s, 9.4 * s, 8.4 * s), fill=(245, 200, 40))
    _caption(draw, side, "daisy")
    return _png(image, "daisy.png")


def clip(width: int, height: int, seconds: float, fps: int = 12) -> Upload:
    """A short H.264 MP4 of a red square sliding across a green field: the video to edit."""
    out = io.BytesIO()
    frames = max(2, round(seconds * fps))
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        side = height // 3
        for n in range(frames):
            image = Image.new("RGB", (width, height), (120, 190, 240))
            draw = ImageDraw.Draw(image)
            draw.rectangle((0, height * 2 // 3, width, height), fill=(80, 160, 70))
            x = int(n / (frames - 1) * (width - side))
            draw.rectangle(
                (x, height * 2 // 3 - side, x + side, height * 2 // 3), fill=(220, 40, 40)
            )
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            frame.pts = n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Upload("red-square.mp4", out.getvalue(), "video/mp4", width, height)
