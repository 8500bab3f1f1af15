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
    return check_splats(path, _module(path.suffix.lower()).load(path))


MAX_LOG_SCALE = 30.0  # e^30 is 1e13 scene units: a file with larger Gaussians is broken, not a scene


def check_splats(path: Path, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Refuse parameters no renderer can use: none at all, NaN or infinity, zero rotations, absurd sizes."""
    N = params["means"].shape[0]
    if N == 0:
        raise file_error(path, "holds no Gaussians")
    for name, value in params.items():
        if not bool(torch.isfinite(value).all()):
            raise file_error(path, f"{name} of some Gaussians is NaN or infinite")
    zero = int((torch.linalg.norm(params["quats"].double(), dim=-1) < 1e-12).sum())
    if zero:
        raise file_error(path, f"{zero:,} of {N:,} Gaussians have a zero rotation quaternion")
    if float(params["scales"].max()) > MAX_LOG_SCALE:
        raise file_error(path, f"some Gaussians have log-scales above {MAX_LOG_SCALE:g} (sizes of e^"
                               f"{float(params['scales'].max()):.3g}); the file is damaged")
    return params
