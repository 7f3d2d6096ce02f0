"""Images are refused before download by their metadata and after by their bytes, with reasons."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.media import ImageInfo, InputRejected, Limits, images, precheck_image, validate_image

from .conftest import Samples

ALLOWED = "images must be PNG, JPEG or WebP."


def rejection(field: str, data: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(InputRejected) as caught:
        validate_image(field, data, limits or Limits())
    return caught.value.message


@pytest.mark.parametrize(
    ("fmt", "kind", "content_type"),
    [("PNG", "png", "image/png"), ("JPEG", "jpeg", "image/jpeg"), ("WEBP", "webp", "image/webp")],
)
def test_accepts_each_allowed_format_at_the_minimum_size(
    samples: Samples, fmt: str, kind: str, content_type: str
) -> None:
    info = validate_image("image", samples.image(fmt, (256, 300)))
    assert info == ImageInfo(content_type=content_type, width=256, height=300, format=kind)


def test_gif_is_refused_by_its_bytes(samples: Samples) -> None:
    gif = samples.image("GIF", (300, 300), mode="P")
    assert rejection("image1", gif) == "image1 is a GIF; images must be PNG, JPEG or WebP."


def test_too_small_image_names_its_size_and_the_minimum(samples: Samples) -> None:
    message = rejection("image", samples.image("PNG", (180, 120)))
    assert message == "image is 180×120 px; each side must be at least 256 px."


@pytest.mark.parametrize("size", [(1, 1), (100, 100), (255, 512)])
def test_images_below_256_px_on_any_side_are_refused(
    samples: Samples, size: tuple[int, int]
) -> None:
    message = rejection("image2", samples.image("JPEG", size))
    assert message.startswith(f"image2 is {size[0]}×{size[1]} px;")
    assert "at least 256 px" in message


def test_pixel_bomb_header_is_refused_without_decoding(samples: Samples) -> None:
    bomb = samples.png_bomb(50_000, 50_000)
    assert len(bomb) < 200
    message = rejection("image", bomb)
    assert message == "image is 50000×50000 px; each side may be at most 8192 px."


def test_bomb_is_refused_from_the_header_before_pillow_opens_it(
    samples: Samples, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pillow(*args: object, **kwargs: object) -> Image.Image:
        raise AssertionError("Pillow must not see an out-of-bounds image")

    monkeypatch.setattr(images.Image, "open", no_pillow)
    jpeg = bytearray(samples.image("JPEG", (300, 300)))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = (9000).to_bytes(2, "big") + (9000).to_bytes(2, "big")
    assert rejection("image", bytes(jpeg)).startswith("image is 9000×9000 px;")
    assert rejection("image", samples.png_bomb(8000, 8000)).startswith("image is 8000×8000 px")


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("PNG", "RGB", {}),
        ("JPEG", "RGB", {"progressive": True}),
        ("WEBP", "RGB", {"lossless": False}),
        ("WEBP", "RGB", {"lossless": True}),
        ("WEBP", "RGBA", {"lossless": False}),
    ],
)
def test_header_size_reads_dimensions_without_decoding(
    fmt: str, mode: str, options: dict[str, bool]
) -> None:
    out = io.BytesIO()
    Image.new(mode, (333, 257)).save(out, format=fmt, **options)
    data = out.getvalue()
    assert images.header_size(fmt.lower(), data) == (333, 257)


def test_too_many_pixels_is_refused_even_when_each_side_is_allowed(samples: Samples) -> None:
    bomb = samples.png_bomb(8000, 8000)
    message = rejection("image", bomb)
    assert message == (
        "image is 8000×8000 px (64 megapixels); images may have at most 50 megapixels."
    )


def test_pixel_bound_is_per_call_not_pillows_global(samples: Samples) -> None:
    before = Image.MAX_IMAGE_PIXELS
    tight = Limits(image_max_pixels=100_000)
    message = rejection("image", samples.image("WEBP", (400, 400)), tight)
    assert "at most 0.1 megapixels" in message
    # The same image passes with the default limits, and Pillow's global was never changed.
    assert validate_image("image", samples.image("WEBP", (400, 400))).width == 400
    assert before == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_refused_as_damaged(samples: Samples, fmt: str) -> None:
    data = samples.image(fmt, (400, 400), noise=True)
    message = rejection("image", data[: len(data) // 2])
    name = "PNG" if fmt == "PNG" else "JPEG"
    assert message == (
        f"image is a damaged or incomplete {name} file; "
        "please upload it again or export it as PNG, JPEG or WebP."
    )


def test_garbled_header_is_refused_as_damaged(samples: Samples) -> None:
    data = bytearray(samples.image("PNG", (300, 300)))
    data[8:33] = b"\x00" * 25  # the IHDR chunk
    assert "damaged or incomplete PNG" in rejection("image", bytes(data))


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "PNG"), ("WEBP", "WebP")])
def test_animated_images_are_refused(samples: Samples, fmt: str, name: str) -> None:
    message = rejection("image3", samples.animated(fmt, (300, 300)))
    assert message == (
        f"image3 is an animated {name}; images must be still pictures (PNG, JPEG or WebP)."
    )


def test_text_renamed_to_png_is_called_text() -> None:
    message = rejection("image", b"I promise this is a photo\n")
    assert message == f"image is a text file, not an image; {ALLOWED}"


def test_svg_is_called_a_drawing() -> None:
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="512"/>'
    assert rejection("image", svg) == f"image is an SVG drawing; {ALLOWED}"


def test_empty_file_is_called_empty() -> None:
    assert rejection("image", b"") == f"image is an empty file; {ALLOWED}"


def test_unknown_binary_is_not_an_image() -> None:
    message = rejection("image", bytes(range(256)) * 8)
    assert message == f"image is not a file we can read as an image; {ALLOWED}"


def test_a_video_given_as_image_is_named(samples: Samples) -> None:
    video = samples.video("v.mp4", frames=2).read_bytes()
    assert rejection("image", video) == f"image is an MP4 video; {ALLOWED}"


def test_oversized_file_is_refused_with_its_size(samples: Samples) -> None:
    data = samples.image("PNG", (300, 300), noise=True)
    assert len(data) > 1024
    message = rejection("image", data, Limits(image_max_bytes=1024))
    assert message.startswith("image is ")
    assert message.endswith("; images may be at most 1 KiB.")


# Pre-checks from Discord's attachment metadata, before anything is downloaded.


def test_precheck_accepts_a_plausible_attachment() -> None:
    precheck_image("image", content_type="image/png", size=1000, width=1024, height=768)
    precheck_image("image", content_type=None, size=1000, width=None, height=None)


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("image/gif", "image1 was sent as a GIF; images must be PNG, JPEG or WebP."),
        ("image/svg+xml", "image1 was sent as an SVG drawing; images must be PNG, JPEG or WebP."),
        ("video/mp4", "image1 was sent as an MP4 video; images must be PNG, JPEG or WebP."),
        ("text/plain; charset=utf-8", f"image1 was sent as a text file, not an image; {ALLOWED}"),
        (
            "application/x-evil<@1>",
            f"image1 was sent as a file of type application/x-evil1; {ALLOWED}",
        ),
    ],
)
def test_precheck_refuses_declared_non_images(content_type: str, message: str) -> None:
    with pytest.raises(InputRejected) as caught:
        precheck_image("image1", content_type=content_type, size=10, width=300, height=300)
    assert caught.value.message == message


def test_precheck_refuses_declared_size_over_20_mib() -> None:
    with pytest.raises(InputRejected) as caught:
        precheck_image(
            "image", content_type="image/jpeg", size=25 * 1024 * 1024, width=300, height=300
        )
    assert caught.value.message == "image is 25 MiB; images may be at most 20 MiB."


def test_precheck_refuses_declared_dimensions() -> None:
    with pytest.raises(InputRejected) as caught:
        precheck_image("image", content_type="image/webp", size=500, width=180, height=120)
    assert caught.value.message == "image is 180×120 px; each side must be at least 256 px."


def test_precheck_refuses_empty_attachment() -> None:
    with pytest.raises(InputRejected) as caught:
        precheck_image("image", content_type="image/png", size=0, width=None, height=None)
    assert caught.value.message == f"image is an empty file; {ALLOWED}"


@pytest.mark.parametrize("pixels", [(400, 400), (2100, 2100)], ids=["decoded", "by-structure"])
def test_truncated_webp_is_refused_small_or_large(
    samples: Samples, pixels: tuple[int, int]
) -> None:
    # Small WebPs are decoded; ones over 4 megapixels are checked by their RIFF chunks.
    data = samples.image("WEBP", pixels, noise=True)
    assert validate_image("image", data).width == pixels[0]
    message = rejection("image", data[: len(data) // 2])
    assert message == (
        "image is a damaged or incomplete WebP file; "
        "please upload it again or export it as PNG, JPEG or WebP."
    )


def test_png_with_a_damaged_chunk_is_refused_without_decoding(samples: Samples) -> None:
    data = bytearray(samples.image("PNG", (400, 400), noise=True))
    data[len(data) // 2] ^= 0xFF  # inside IDAT: its CRC no longer matches
    assert "damaged or incomplete PNG" in rejection("image", bytes(data))
