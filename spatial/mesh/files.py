"""Writing meshes (PLY, OBJ, GLB through trimesh) and coloured point clouds (PLY)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spatial.errors import SpatialError
from spatial.files import atomic_path
from spatial.formats import MESH_WRITE_SUFFIXES, POINT_SUFFIXES


@dataclass
class Mesh:
    vertices: np.ndarray  # [V, 3] float32 world positions
    faces: np.ndarray  # [F, 3] int64 vertex indices, counter-clockwise seen from outside
    colors: np.ndarray  # [V, 3] float32 in 0-1

    def to_trimesh(self):
        import trimesh

        rgba = np.concatenate([(self.colors * 255 + 0.5).clip(0, 255), np.full((len(self.colors), 1), 255)], -1)
        return trimesh.Trimesh(self.vertices, self.faces, vertex_colors=rgba.astype(np.uint8), process=False)


def save_mesh(mesh: Mesh, path: Path) -> None:
    """Write `mesh` with vertex colours; the format follows the suffix (.ply, .obj, .glb)."""
    path = Path(path)
    kind = path.suffix.lower()
    if kind not in MESH_WRITE_SUFFIXES:
        raise SpatialError(f"{path}: unknown mesh format {kind!r}; choose from {', '.join(MESH_WRITE_SUFFIXES)}")
    data = mesh.to_trimesh().export(file_type=kind[1:])
    with atomic_path(path) as tmp:
        tmp.write_bytes(data if isinstance(data, bytes) else data.encode())


def save_points(points: np.ndarray, colors: np.ndarray, path: Path) -> None:
    """Binary PLY point cloud: `points [P, 3]`, `colors [P, 3]` in 0-1 (MeshLab, CloudCompare, Blender open it)."""
    import torch

    from spatial.io.points_ply import write_points_ply

    path = Path(path)
    if path.suffix.lower() not in POINT_SUFFIXES:
        raise SpatialError(f"{path}: point clouds are written as {' or '.join(POINT_SUFFIXES)}")
    rgb = (np.asarray(colors) * 255 + 0.5).clip(0, 255).astype(np.uint8)
    write_points_ply(path, torch.from_numpy(np.asarray(points, np.float32)), torch.from_numpy(rgb))
