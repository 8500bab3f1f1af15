"""`spatial export splat`."""

from __future__ import annotations

from dataclasses import dataclass

from spatial.cli.export import SplatExport


@dataclass
class ExportSplat(SplatExport):
    """Export splats as a .splat file (32 bytes a splat, colour without SH; for web viewers)."""

    suffix = ".splat"
