"""How much a compressed splat file may unpack to, decided from its headers before anything is unpacked.

A real SPZ or SOG unpacks to 1.2-4 times its size (measured on trained worlds: SPZ 3 and 4 at SH degree 0 and 1,
SOG's WebP images), so a file that claims far more is damaged or a decompression bomb: 20 KB of ZSTD can claim
650 MB of splats, which decode to gigabytes. Small files get a fixed allowance so that a tiny world of any
shape still opens.
"""

from __future__ import annotations

from pathlib import Path

from spatial.errors import file_error

RATIO = 32  # at most this many bytes unpacked per stored byte (real files: 1.2-4)
FLOOR = 16 * 2**20  # bytes any file may unpack to, whatever its size


def check_expansion(path: Path, what: str, unpacked: int, stored: int) -> None:
    """Refuse a file whose header says `what` unpacks to `unpacked` bytes from `stored` bytes, beyond the
    budget (`RATIO` times the stored bytes, at least `FLOOR`)."""
    allowed = max(FLOOR, RATIO * stored)
    if unpacked > allowed:
        raise file_error(path, f"{what} would unpack to {unpacked / 2**20:,.0f} MB from a {stored / 1024:,.0f} KB "
                               f"file, more than {RATIO} times its size: the file is damaged (or a decompression "
                               "bomb)")
