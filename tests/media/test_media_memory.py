"""Checking a member's image costs memory for its bytes, not for its pixels: a 49-megapixel PNG
(within the limits) is checked without a full-resolution decode."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Run in a fresh interpreter so ru_maxrss (the peak, which never goes down) sees only this check.
CHILD = textwrap.dedent(
    """
    import resource, struct, sys, zlib

    from bot.media import validate_image

    def png(width, height):
        def chunk(kind, body):
            crc = zlib.crc32(kind + body) & 0xFFFFFFFF
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
        squeeze = zlib.compressobj(9)
        row = b"\\x00" + b"\\x7f" * (width * 3)
        idat = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                + chunk(b"IEND", b""))

    data = png(7000, 7000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info = validate_image("image", data)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(info.width, info.height, (after - before) // 1024)
    """
)


def test_a_49_megapixel_png_is_checked_without_decoding_its_pixels() -> None:
    run = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=120
    )
    width, height, grew_mib = (int(part) for part in run.stdout.split())
    assert (width, height) == (7000, 7000)
    # A full decode holds 7000 × 7000 × 3 bytes (140 MiB); the check may use a small fraction.
    assert grew_mib < 20, f"checking the image grew the peak memory by {grew_mib} MiB"
