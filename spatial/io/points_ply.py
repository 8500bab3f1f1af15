"""Coloured point clouds as PLY (`x y z red green blue`), the layout nerfstudio's `sparse_pc.ply` uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement, PlyParseError

from spatial.errors import file_error


def write_points_ply(path: Path, points: torch.Tensor, colors: torch.Tensor) -> None:
    """Points `[P, 3]` float and colours `[P, 3]` uint8 as a binary PLY."""
    vertex = np.zeros(points.shape[0], [(c, "f4") for c in "xyz"] + [(c, "u1") for c in ("red", "green", "blue")])
    xyz, rgb = points.detach().cpu().numpy(), colors.cpu().numpy()
    for i, c in enumerate("xyz"):
        vertex[c] = xyz[:, i]
    for i, c in enumerate(("red", "green", "blue")):
        vertex[c] = rgb[:, i]
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(path))


def read_points_ply(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Points `[P, 3]` float32 and colours `[P, 3]` uint8 (grey where the file has none)."""
    try:
        vertex = PlyData.read(str(path))["vertex"]
        xyz = np.stack([vertex[c] for c in "xyz"], -1).astype(np.float32)
    except FileNotFoundError:
        raise file_error(path, "point cloud not found") from None
    except (KeyError, ValueError, OSError, PlyParseError) as e:
        raise file_error(path, f"not a PLY point cloud with x, y, z vertices ({e})") from None
    names = vertex.data.dtype.names
    if all(c in names for c in ("red", "green", "blue")):
        rgb = np.stack([vertex[c] for c in ("red", "green", "blue")], -1).astype(np.uint8)
    else:
        rgb = np.full_like(xyz, 128, dtype=np.uint8)
    return torch.from_numpy(xyz), torch.from_numpy(rgb)
