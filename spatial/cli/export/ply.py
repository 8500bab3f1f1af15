"""`spatial export ply`."""

from __future__ import annotations

from dataclasses import dataclass

from spatial.cli.export import SplatExport


@dataclass
class ExportPly(SplatExport):
    """Export splats as an INRIA 3DGS PLY (lossless; SuperSplat and the 3DGS viewers open it)."""

    suffix = ".ply"
