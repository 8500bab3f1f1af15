"""Ground-truth geometry checks: how far a reconstructed mesh lies from a built-in scene's surfaces.

    report = mesh_error(mesh, scene_path)    # distances in scene units and as a fraction of extent

Mesh to truth uses the exact distance to the scene's primitives; truth to mesh samples the visible
surfaces (the saved ground-truth depth maps, unprojected) and finds the nearest of many points
sampled on the mesh. Their mean is the symmetric distance that the acceptance tests bound.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from spatial.cameras import pixel_centers
from spatial.scenes import SCENES, scene_size
from spatial.scenes.config import SceneSize
from spatial.scenes.raytrace import surface_distance


def ground_truth_points(scene_path: Path, count: int = 20000, seed: int = 0) -> torch.Tensor:
    """Points `[count, 3]` on the surfaces the scene's cameras see, from its saved depth maps."""
    meta = json.loads((scene_path / "ground_truth" / "scene.json").read_text())
    cameras = SCENES[meta["name"]].cameras(SceneSize(**meta["size"]))
    points = []
    for i, image in enumerate(meta["images"]):
        depth = torch.from_numpy(np.load(scene_path / "ground_truth" / "depth" / f"{Path(image).stem}.npy")).float()
        H, W = depth.shape
        hit = depth > 0
        uv = pixel_centers(W, H).reshape(H, W, 2)[hit]
        points.append(cameras[i].unproject(uv[None], depth[hit][None])[0])
    points = torch.cat(points)
    pick = torch.randperm(len(points), generator=torch.Generator().manual_seed(seed))[:count]
    return points[pick]


def instance_mask(scene_path: Path, image: str | Path) -> np.ndarray:
    """`[H, W]` uint8: which primitive the centre of each pixel of `image` (its path or name in the scene) sees
    (0: none, i + 1: primitive i)."""
    from PIL import Image

    return np.asarray(Image.open(scene_path / "ground_truth" / "instance" / f"{Path(image).stem}.png"))


def mesh_error(mesh, scene_path: Path, samples: int = 20000) -> dict:
    """Mean distances between `mesh` (`spatial.mesh.Mesh`) and the scene's true surfaces."""
    meta = json.loads((scene_path / "ground_truth" / "scene.json").read_text())
    prims = SCENES[meta["name"]].primitives()
    tm = mesh.to_trimesh()
    on_mesh = torch.from_numpy(np.asarray(tm.sample(samples))).float()
    to_truth = surface_distance(prims, on_mesh)
    truth = ground_truth_points(scene_path, samples)
    dense = torch.from_numpy(np.asarray(tm.sample(10 * samples))).float()
    to_mesh = torch.cat([torch.cdist(chunk, dense).min(dim=1).values for chunk in truth.split(2000)])
    extent = float(meta["extent"])
    symmetric = 0.5 * float(to_truth.mean() + to_mesh.mean())
    return {"mesh_to_truth": float(to_truth.mean()), "truth_to_mesh": float(to_mesh.mean()),
            "symmetric": symmetric, "extent": extent, "symmetric_fraction": symmetric / extent}


__all__ = ["ground_truth_points", "mesh_error", "scene_size"]
