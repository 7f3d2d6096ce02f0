"""Tell what a file is from its first bytes, never from its name."""

from __future__ import annotations

# ISO-BMFF brands that mean a still image (HEIF/AVIF), not a video, though they share the ftyp box.
_IMAGE_BRANDS = {
    b"heic": "heic",
    b"heix": "heic",
    b"heim": "heic",
    b"heis": "heic",
    b"hevc": "heic",
    b"mif1": "heic",
    b"msf1": "heic",
    b"avif": "avif",
    b"avis": "avif",
}
# Old QuickTime files may start straight with one of these atoms instead of an ftyp box.
_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"pnot")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = b"\x42\x82"

# What each kind is called in a member-facing sentence.
DISPLAY_NAMES: dict[str, str] = {
    "png": "PNG",
    "jpeg": "JPEG",
    "webp": "WebP",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
    "heic": "HEIC",
    "avif": "AVIF",
    "svg": "SVG",
    "xml": "XML",
    "pdf": "PDF",
    "zip": "ZIP",
    "mp4": "MP4",
    "mov": "MOV",
    "webm": "WebM",
    "mkv": "MKV",
    "avi": "AVI",
    "text": "text",
    "empty": "empty",
}

CONTENT_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
}

IMAGE_KINDS = frozenset({"png", "jpeg", "webp", "gif", "bmp", "tiff", "heic", "avif", "svg"})
VIDEO_KINDS = frozenset({"mp4", "mov", "webm", "mkv", "avi"})


def sniff(data: bytes) -> str | None:
    """Return the kind of file `data` holds ("png", "mov", "text", "empty", ...) or None if unknown.

    Kinds: png, jpeg, webp, gif, bmp, tiff, heic, avif, svg, xml, pdf, zip, mp4, mov, webm, mkv,
    avi, text and empty.
    """
    if not data:
        return "empty"
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(data)
    if head[4:8] in _QUICKTIME_ATOMS:
        return "mov"
    if head.startswith(_EBML_MAGIC):
        return _sniff_ebml(data)
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"BM") and len(data) >= 26:
        return "bmp"
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    return _sniff_text(data)


def _sniff_ftyp(data: bytes) -> str:
    # The major brand decides: "qt  " is QuickTime (MOV); HEIF/AVIF brands are still images;
    # every other brand (isom, mp41, mp42, avc1, M4V, 3gp...) is read by the same MP4 demuxer.
    major = data[8:12]
    if major in _IMAGE_BRANDS:
        return _IMAGE_BRANDS[major]
    if major == b"qt  ":
        return "mov"
    return "mp4"


def _sniff_ebml(data: bytes) -> str:
    # The DocType element ("webm" or "matroska") sits in the EBML header, within the first bytes.
    head = data[:128]
    at = head.find(_EBML_DOCTYPE_ID)
    if at >= 0 and at + 3 <= len(head):
        size_byte = head[at + 2]
        # A one-byte EBML size has its top bit set; the value is the low seven bits.
        if size_byte & 0x80:
            doctype = head[at + 3 : at + 3 + (size_byte & 0x7F)]
            if doctype == b"webm":
                return "webm"
    return "mkv"


def _sniff_text(data: bytes) -> str | None:
    head = data[:4096]
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the 4 KiB window is still text.
        if exc.start < len(head) - 4:
            return None
        text = head[: exc.start].decode("utf-8")
    stripped = text.lstrip("\ufeff \t\r\n").lower()
    if stripped.startswith("<svg") or (
        stripped.startswith(("<?xml", "<!doctype svg", "<!--")) and "<svg" in stripped
    ):
        return "svg"
    if stripped.startswith("<?xml"):
        return "xml"
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n")
    if printable >= 0.95 * len(text):
        return "text"
    return None
