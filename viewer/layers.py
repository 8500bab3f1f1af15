"""Opening what `spatial view` is given: runs, checkpoints and splat files become editable splat
layers; meshes and point clouds become fixed layers drawn as they are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spatial.errors import SpatialError, file_error
from spatial.formats import MESH_READ_SUFFIXES, POINT_SUFFIXES, is_splat_file, splat_suffixes
from spatial.trained import TrainedModel, load_model


@dataclass
class StaticLayer:
    """A mesh or point cloud shown beside the splats (not edited)."""

    name: str
    vertices: np.ndarray  # [V, 3]
    colors: np.ndarray | None  # [V, 3] uint8
    faces: np.ndarray | None  # [F, 3]; None for a point cloud


def open_input(path: Path, spz_axes: str = "rub") -> TrainedModel | StaticLayer:
    """A trained model (run folder, checkpoint, any splat format spatial.formats reads; `spz_axes`: an SPZ
    file's), or a mesh or point cloud to show beside it."""
    path = Path(path)
    if not path.exists():
        raise file_error(path, "not found")
    if path.is_dir() or path.suffix == ".pt" or is_splat_file(path):
        return load_model(path, spz_axes=spz_axes)
    if path.suffix.lower() in (*MESH_READ_SUFFIXES, *POINT_SUFFIXES):
        import trimesh

        from spatial.io.ply_header import check_ply_header

        if path.suffix.lower() == ".ply":
            check_ply_header(path)  # counts against the file's size, before trimesh allocates them
        try:
            loaded = trimesh.load(path, force="mesh" if path.suffix.lower() != ".ply" else None)
        except Exception as e:  # noqa: BLE001 - trimesh raises many kinds on a bad file
            raise file_error(path, f"not a readable mesh or point cloud ({e})") from None
        if isinstance(loaded, trimesh.Scene):
            loaded = loaded.to_mesh()
        colors = getattr(loaded, "colors", None) if isinstance(loaded, trimesh.PointCloud) else \
            getattr(loaded.visual, "vertex_colors", None)
        colors = None if colors is None or len(colors) == 0 else np.asarray(colors)[:, :3].astype(np.uint8)
        faces = np.asarray(loaded.faces) if isinstance(loaded, trimesh.Trimesh) and len(loaded.faces) else None
        if len(loaded.vertices) == 0:
            raise file_error(path, "holds no vertices")
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, refused below
            vertices = np.asarray(loaded.vertices, np.float32)
        bad = int((~np.isfinite(vertices).all(-1)).sum())
        if bad:  # as spatial.io.points_ply.read_points_ply says it
            raise file_error(path, f"{bad:,} points have NaN or infinite coordinates")
        return StaticLayer(path.stem, vertices, colors, faces)
    raise SpatialError(f"{path}: cannot view {path.suffix!r} files; give a training run folder, a checkpoint, "
                       f"a splat file ({', '.join(splat_suffixes())}), a mesh ({', '.join(MESH_READ_SUFFIXES)}) "
                       f"or a point cloud ({', '.join(POINT_SUFFIXES)})")


def camera_thumbnails(scene, width: int = 96) -> list[np.ndarray]:
    """Each camera's image, `width` pixels wide, for its frustum in the viewer."""
    from PIL import Image

    images = []
    for i in range(len(scene)):
        rgb = (scene.load_image(i) * 255).astype(np.uint8)
        h, w = rgb.shape[:2]
        images.append(np.asarray(Image.fromarray(rgb).resize((width, max(1, round(width * h / w))))))
    return images
