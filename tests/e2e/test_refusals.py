"""Every refusal of PRODUCT.md §1 through real Discord traffic: seen by the member alone, naming
what is allowed, sending nothing to fal and charging nothing."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from bot.sandbox.fakediscord import CommandMismatch
from tests.e2e.conftest import World, mp4, png

MiB = 1024 * 1024
Options = Callable[[World], dict[str, Any]]


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (512, 512), "red").save(out, "GIF")
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512"><rect/></svg>'
TEXT = b"these are not the pixels you are looking for\n" * 20


def bomb() -> bytes:
    """A tiny PNG whose header claims 60,000 x 60,000 pixels (3.6 gigapixels)."""
    real = png(8, 8)
    header = struct.pack(">II", 60_000, 60_000) + real[24:29]
    chunk = b"IHDR" + header
    crc = struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return real[:8] + struct.pack(">I", len(header)) + chunk + crc + real[33:]


@dataclass(frozen=True)
class Case:
    command: str
    options: Options
    says: tuple[str, ...]  # what the refusal must mention: the problem and what is allowed
    before_defer: bool  # True: a check of the options or declared metadata (no download)


def image(world: World, data: bytes | None = None, name: str = "in.png", **kw: Any) -> Any:
    return world.attach(png() if data is None else data, name, **kw)


def frames(count: int, **options: Any) -> Options:
    def build(world: World) -> dict[str, Any]:
        shots = {f"image{n}": image(world) for n in range(1, count + 1)}
        return {**shots, **options}

    return build


CASES: dict[str, Case] = {
    # Option values and combinations: refused before the defer.
    "aspect ratio with text v2.5": Case(
        "pika text",
        lambda w: {"prompt": "a boat", "aspect_ratio": "1:1"},
        ("aspect_ratio", "v2.5", "v2.2"),
        True,
    ),
    "480p with text v2.2": Case(
        "pika text",
        lambda w: {"prompt": "a boat", "resolution": "480p", "model": "v2.2"},
        ("480p", "v2.5", "720p or 1080p"),
        True,
    ),
    "a prompt of only spaces": Case(
        "pika text", lambda w: {"prompt": "    "}, ("prompt is empty", "1,500"), True
    ),
    "an effect prompt over 1,500 characters": Case(
        "pika effect",
        lambda w: {"image": image(w), "effect": "Melt", "prompt": "x" * 1501},
        ("1,501", "1,500"),
        True,
    ),
    "a negative prompt over 1,500 characters": Case(
        "pika text",
        lambda w: {"prompt": "a boat", "negative_prompt": "y" * 1600},
        ("negative_prompt", "1,600", "1,500"),
        True,
    ),
    "frames durations for the wrong number of transitions": Case(
        "pika frames", frames(2, durations="5,5"), ("durations has 2 values", "give 1"), True
    ),
    "frames durations over 25 s in all": Case(
        "pika frames", frames(5, durations="10,10,5,5"), ("30", "25"), True
    ),
    "frames durations that are not whole seconds": Case(
        "pika frames", frames(3, durations="5,2.5"), ("whole seconds", "2.5"), True
    ),
    "frames durations of zero": Case(
        "pika frames", frames(2, durations="0"), ("at least 1",), True
    ),
    "frames prompts for the wrong number of transitions": Case(
        "pika frames", frames(3, prompts="a|b|c"), ("prompts has 3 entries", "give 2"), True
    ),
    "swap without an image or a prompt": Case(
        "pika swap",
        lambda w: {"video": w.attach(mp4(1.0), "clip.mp4"), "region": "the car"},
        ("image", "prompt"),
        True,
    ),
    # What Discord says of the files, before anything is downloaded.
    "an image declared as GIF": Case(
        "pika animate",
        lambda w: {"image": image(w, gif(), "anim.gif"), "prompt": "go"},
        ("GIF", "PNG, JPEG or WebP"),
        True,
    ),
    "an image declared as SVG": Case(
        "pika effect",
        lambda w: {"image": image(w, SVG, "logo.svg"), "effect": "Melt"},
        ("SVG", "PNG, JPEG or WebP"),
        True,
    ),
    "an image declared 100 x 100 px": Case(
        "pika animate",
        lambda w: {"image": image(w, png(100, 100), width=100, height=100), "prompt": "go"},
        ("100×100", "at least 256 px"),
        True,
    ),
    "an image over 20 MiB": Case(
        "pika animate",
        lambda w: {"image": image(w, png() + bytes(20 * MiB)), "prompt": "go"},
        ("20 MiB",),
        True,
    ),
    "an empty image": Case(
        "pika scenes",
        lambda w: {"image1": image(w), "image2": image(w, b""), "prompt": "go"},
        ("image2", "empty", "PNG, JPEG or WebP"),
        True,
    ),
    "an image declared as the video": Case(
        "pika add",
        lambda w: {"video": image(w, png(), "clip.png"), "image": image(w)},
        ("video", "MP4, MOV or WebM"),
        True,
    ),
    "a video over 50 MiB": Case(
        "pika swap",
        lambda w: {"video": w.attach(mp4(1.0) + bytes(50 * MiB), "big.mp4"), "prompt": "a"},
        ("50 MiB",),
        True,
    ),
    # The bytes themselves: refused after the defer (the deferred reply is deleted).
    "a text file renamed .png": Case(
        "pika animate",
        lambda w: {"image": image(w, TEXT, "photo.png"), "prompt": "go"},
        ("text file", "PNG, JPEG or WebP"),
        False,
    ),
    "a GIF renamed .png": Case(
        "pika animate",
        lambda w: {"image": image(w, gif(), "photo.png"), "prompt": "go"},
        ("GIF", "PNG, JPEG or WebP"),
        False,
    ),
    "an SVG renamed .png": Case(
        "pika frames",
        lambda w: {"image1": image(w), "image2": image(w, SVG, "b.png")},
        ("image2", "SVG", "PNG, JPEG or WebP"),
        False,
    ),
    "a tiny image": Case(
        "pika effect",
        lambda w: {"image": image(w, png(64, 300)), "effect": "Poke"},
        ("64×300", "at least 256 px"),
        False,
    ),
    "a decompression bomb": Case(
        "pika animate",
        lambda w: {"image": image(w, bomb()), "prompt": "go"},
        ("60000×60000",),
        False,
    ),
    "a video over 30 s": Case(
        "pika swap",
        lambda w: {"video": w.attach(mp4(31, 64, 64, 1), "long.mp4"), "prompt": "a"},
        ("30 s",),
        False,
    ),
    "an image passed as the video": Case(
        "pika add",
        lambda w: {"video": image(w, png(), "clip.mp4"), "image": image(w)},
        ("video", "PNG", "MP4, MOV or WebM"),
        False,
    ),
    "a video passed as the image": Case(
        "pika add",
        lambda w: {"video": w.attach(mp4(1.0), "clip.mp4"), "image": w.attach(mp4(1.0), "i.png")},
        ("image", "MP4", "PNG, JPEG or WebP"),
        False,
    ),
}


async def assert_nothing_happened(world: World) -> None:
    """Nothing was sent to fal, no job was written, nothing was reserved or charged."""
    assert sum(world.fal.counts.values()) == 0, dict(world.fal.counts)
    assert world.fal.submissions == []
    assert await world.jobs() == []
    assert await world.ledger() == []


async def check_refusals(world: World, before_defer: bool) -> None:
    """Run every case of one kind in turn, in one world: each must leave no trace."""
    cases = {name: case for name, case in CASES.items() if case.before_defer is before_defer}
    assert cases
    for name, case in cases.items():
        options = case.options(world)
        interaction = await world.command(case.command, options)
        refused = await world.refusal(interaction)
        for words in case.says:
            assert words in refused.text, f"{name}: {refused.text}"
        assert refused.before_defer is before_defer, f"{name}: {refused}"
        if before_defer:
            # Refused from what Discord said of the files: none was downloaded.
            files = [v for v in options.values() if isinstance(v, dict)]
            assert all(world.fake.downloads(f) == 0 for f in files), name
        await assert_nothing_happened(world)
    assert world.posts() == []
    # Every message the bot sent was for the member alone (or deleted before anyone saw it).
    assert all(m.ephemeral or m.deleted for m in world.bot_messages())


async def test_option_and_declared_file_refusals_are_true_ephemeral_replies(world: World) -> None:
    await check_refusals(world, before_defer=True)


async def test_file_refusals_by_bytes_replace_the_deferred_reply_with_an_ephemeral_one(
    world: World,
) -> None:
    await check_refusals(world, before_defer=False)


IMPOSSIBLE: dict[str, tuple[str, Options]] = {
    "frames with one image": ("pika frames", lambda w: {"image1": image(w)}),
    "scenes with seven images": (
        "pika scenes",
        lambda w: {**{f"image{n}": image(w) for n in range(1, 8)}, "prompt": "x"},
    ),
    "a seed above 2^32-1": ("pika text", lambda w: {"prompt": "a", "seed": 2**32}),
    "a negative seed": ("pika text", lambda w: {"prompt": "a", "seed": -1}),
    "a text prompt over 1,500 characters": ("pika text", lambda w: {"prompt": "p" * 1501}),
    "480p for animate": (
        "pika animate",
        lambda w: {"image": image(w), "prompt": "a", "resolution": "480p"},
    ),
    "an effect that does not exist": (
        "pika effect",
        lambda w: {"image": image(w), "effect": "Vaporise"},
    ),
    "a duration of 7 s": ("pika text", lambda w: {"prompt": "a", "duration": 7}),
    "add without an image": ("pika add", lambda w: {"video": w.attach(mp4(1.0), "v.mp4")}),
}


async def test_values_the_synced_commands_forbid_never_reach_the_bot(world: World) -> None:
    # The fake builds interactions from the command JSON the bot synced, as Discord does: a
    # required option, a choice list or a min/max there means Discord refuses it itself.
    for name, (command, options) in IMPOSSIBLE.items():
        with pytest.raises(CommandMismatch):
            await world.command(command, options(world))
        assert not world.fake.interactions, name
    await assert_nothing_happened(world)
