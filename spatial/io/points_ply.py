"""Coloured point clouds as PLY (`x y z red green blue`), the layout nerfstudio's `sparse_pc.ply` uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement

from spatial.errors import file_error
from spatial.files import atomic_path
from spatial.io.ply_header import check_ply_header


def write_points_ply(path: Path, points: torch.Tensor, colors: torch.Tensor) -> None:
    """Points `[P, 3]` float and colours `[P, 3]` uint8 as a binary little-endian PLY, written atomically:
    the one point-cloud writer (scene folders' sparse points, `spatial export points`)."""
    vertex = np.zeros(points.shape[0], [(c, "f4") for c in "xyz"] + [(c, "u1") for c in ("red", "green", "blue")])
    xyz, rgb = points.detach().cpu().numpy(), colors.cpu().numpy()
    for i, c in enumerate("xyz"):
        vertex[c] = xyz[:, i]
    for i, c in enumerate(("red", "green", "blue")):
        vertex[c] = rgb[:, i]
    with atomic_path(Path(path)) as tmp:
        PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(str(tmp))


def read_points_ply(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Points `[P, 3]` float32 and colours `[P, 3]` uint8 (grey where the file has none)."""
    if not Path(path).is_file():
        raise file_error(path, "point cloud not found")
    check_ply_header(Path(path))
    try:
        vertex = PlyData.read(str(path))["vertex"]
        with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 become inf: refused below
            xyz = np.stack([vertex[c] for c in "xyz"], -1).astype(np.float32)
    except Exception as e:  # noqa: BLE001 - plyfile raises many kinds for a damaged file
        raise file_error(path, f"not a PLY point cloud with x, y, z vertices ({type(e).__name__}: "
                               f"{str(e)[:200]})") from None
    if not np.isfinite(xyz).all():
        raise file_error(path, f"{int((~np.isfinite(xyz).all(-1)).sum()):,} points have NaN or infinite coordinates")
    names = vertex.data.dtype.names
    if all(c in names for c in ("red", "green", "blue")):
        try:
            rgb = np.stack([vertex[c] for c in ("red", "green", "blue")], -1).astype(np.float64)
        except (TypeError, ValueError):  # list properties: not colours
            raise file_error(path, "red, green and blue must be plain numbers (0-255)") from None
        rgb = np.nan_to_num(rgb, nan=128).clip(0, 255).astype(np.uint8)
    else:
        rgb = np.full_like(xyz, 128, dtype=np.uint8)
    return torch.from_numpy(xyz), torch.from_numpy(rgb)
