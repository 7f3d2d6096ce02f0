"""sniff() names files by their bytes, never by their names."""

from __future__ import annotations

import pytest

from bot.media import sniff

from .conftest import Samples


def ftyp(brand: bytes) -> bytes:
    return b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x02\x00" + brand + b"isom" + b"\x00" * 32


EBML_WEBM = bytes.fromhex("1a45dfa39f4286810142f7810142f2810442f381084282847765626d")
EBML_MKV = bytes.fromhex("1a45dfa3a34286810142f7810142f2810442f38108428288") + b"matroska"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, "png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 16, "jpeg"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
        (b"GIF89a" + b"\x00" * 10, "gif"),
        (b"GIF87a" + b"\x00" * 10, "gif"),
        (ftyp(b"isom"), "mp4"),
        (ftyp(b"mp42"), "mp4"),
        (ftyp(b"qt  "), "mov"),
        (ftyp(b"heic"), "heic"),
        (ftyp(b"avif"), "avif"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x10mdat", "mov"),
        (EBML_WEBM, "webm"),
        (EBML_MKV, "mkv"),
        (b"RIFF\x10\x00\x00\x00AVI LIST", "avi"),
        (b"%PDF-1.7\n", "pdf"),
        (b"hello, this is not an image\n", "text"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "svg"),
        (b'\xef\xbb\xbf  <svg width="10" height="10"></svg>', "svg"),
        (b'<?xml version="1.0"?><note>hi</note>', "xml"),
        (bytes(range(256)) * 4, None),
    ],
)
def test_sniff_names_the_kind_from_magic_bytes(data: bytes, kind: str | None) -> None:
    assert sniff(data) == kind


def test_sniff_recognises_real_encoded_images(samples: Samples) -> None:
    assert sniff(samples.image("PNG", (8, 8))) == "png"
    assert sniff(samples.image("JPEG", (8, 8))) == "jpeg"
    assert sniff(samples.image("WEBP", (8, 8))) == "webp"
    assert sniff(samples.image("GIF", (8, 8), mode="P")) == "gif"


@pytest.mark.parametrize(
    ("name", "fmt", "codec", "kind"),
    [
        ("a.mp4", "mp4", "libx264", "mp4"),
        ("a.mov", "mov", "libx264", "mov"),
        ("a.webm", "webm", "libvpx", "webm"),
        ("a.mkv", "matroska", "libx264", "mkv"),
    ],
)
def test_sniff_recognises_real_containers(
    samples: Samples, name: str, fmt: str, codec: str, kind: str
) -> None:
    options = {"preset": "ultrafast"} if codec == "libx264" else {}
    path = samples.video(name, fmt=fmt, codec=codec, frames=2, options=options)
    assert sniff(path.read_bytes()) == kind


def test_sniff_ignores_the_file_name(samples: Samples) -> None:
    # The same bytes are a GIF whatever they were called; sniff never sees a name at all.
    gif = samples.image("GIF", (8, 8), mode="P")
    assert sniff(gif) == "gif"
    assert sniff(b"just text renamed to photo.png") == "text"
