"""`spatial export spz`."""

from __future__ import annotations

from dataclasses import dataclass

from spatial.cli.export import SplatExport


@dataclass
class ExportSpz(SplatExport):
    """Export splats as Niantic's SPZ (gzipped fixed point, about 6x smaller than PLY, SH kept)."""

    suffix = ".spz"
