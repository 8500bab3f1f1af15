"""Splat file formats: one module per format, chosen by the file's suffix.

    params = load_splats("scene.spz")          # raw parameters, as `spatial.splats.model` describes
    save_splats(params, "scene.splat")

Every format reads into and writes from the same dict of raw parameters, so converting is loading
one and saving another. Writers are atomic (a temporary name, then a rename).
"""

from __future__ import annotations

from pathlib import Path

import torch

from spatial.errors import SpatialError, file_error

FORMATS = {
    ".ply": "INRIA 3DGS PLY: lossless, every SH band; SuperSplat and the 3DGS viewers open it",
    ".splat": "antimatter15 .splat: 32 bytes a splat, RGB only (no SH), for the common web viewers",
    ".spz": "Niantic SPZ: gzipped fixed-point fields, about 10x smaller than PLY, SH up to degree 3",
}


def _module(suffix: str):
    if suffix == ".ply":
        from spatial.splats import ply

        return ply
    if suffix == ".splat":
        from spatial.formats import splat

        return splat
    if suffix == ".spz":
        from spatial.formats import spz

        return spz
    raise SpatialError(f"unknown splat format {suffix!r}; choose from {', '.join(FORMATS)}")


def save_splats(params: dict[str, torch.Tensor], path: Path) -> None:
    """Write raw splat parameters in the format that `path`'s suffix names (.ply, .splat, .spz)."""
    path = Path(path)
    _module(path.suffix.lower()).save(params, path)


def load_splats(path: Path) -> dict[str, torch.Tensor]:
    """Raw splat parameters from a .ply, .splat or .spz file."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "file not found" if not path.exists() else "not a file")
    return _module(path.suffix.lower()).load(path)
