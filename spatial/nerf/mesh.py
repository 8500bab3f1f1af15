"""A NeRF's surface by marching cubes over its density field, with colours from its radiance field.

The second way to a mesh is TSDF fusion of rendered depth (`spatial.mesh.mesh_from_depth`), which
works for NeRFs and splats alike; this one reads the density directly, so it needs no cameras.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from spatial.errors import SpatialError
from spatial.mesh.files import Mesh


@dataclass
class DensityMeshConfig:
    resolution: int = 256
    """Grid cells along the longest side of the box (memory and time grow with its cube)."""
    threshold: float = 0.5
    """The surface is where a ray crossing one grid cell would stop with this probability
    (1 - exp(-density * cell) = threshold), so it does not depend on the grid's size."""
    box_min: tuple[float, float, float] | None = None
    """Lower corner of the region to mesh (default: the scene box, or the unit radius of an unbounded scene)."""
    box_max: tuple[float, float, float] | None = None
    """Upper corner of the region to mesh (see --box-min)."""


@torch.no_grad()
def density_mesh(model, config: DensityMeshConfig | None = None, chunk: int = 262144,
                 on_progress: Callable[[int, int], None] | None = None) -> Mesh:
    """Marching cubes over `model.field`'s density (model: a `NerfModel`) inside its scene box.

    The field is evaluated on the model's device, chunk by chunk; the grid, the volume and marching
    cubes live on the CPU.
    """
    from skimage.measure import marching_cubes

    config = config or DensityMeshConfig()
    space = model.space
    if config.box_min is not None and config.box_max is not None:
        lo = torch.tensor(config.box_min, dtype=torch.float32, device="cpu")
        hi = torch.tensor(config.box_max, dtype=torch.float32, device="cpu")
    else:
        lo, hi = (space.center - space.half_size).float().cpu(), (space.center + space.half_size).float().cpu()
    cell = float((hi - lo).max()) / config.resolution
    shape = [max(2, int(round(float(s) / cell)) + 1) for s in hi - lo]
    axes = [lo[d] + cell * torch.arange(shape[d], device="cpu") for d in range(3)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    device = next(model.parameters()).device
    density = torch.empty(grid.shape[0], device="cpu")
    for i in range(0, grid.shape[0], chunk):
        # per world unit, as the level below is (the field's own densities are per `1 / density_scale` units)
        density[i:i + chunk] = model.field.density(grid[i:i + chunk].to(device)).float().cpu() * space.density_scale
        if on_progress is not None:
            on_progress(min(i + chunk, grid.shape[0]), grid.shape[0])
    volume = density.reshape(shape).numpy()
    level = -np.log(1 - config.threshold) / cell
    if not (volume.min() < level < volume.max()):
        raise SpatialError(f"no surface at density {level:.3g} inside the box (densities span "
                           f"{volume.min():.3g} to {volume.max():.3g}); try another --threshold or box")
    verts, faces, normals, _ = marching_cubes(volume, level=level, spacing=(cell, cell, cell))
    verts = torch.from_numpy(verts.copy()).float() + lo
    normals = torch.from_numpy(normals.copy()).float()
    # colour each vertex as seen looking along its normal, into the surface (towards higher density)
    probe = model.field.density((verts + cell * normals).to(device)).cpu() * space.density_scale
    inward = normals if float(probe.mean()) > level else -normals
    colors = torch.empty(verts.shape[0], 3, device="cpu")
    for i in range(0, verts.shape[0], chunk // 8):
        x = (verts[i:i + chunk // 8] - 0.5 * cell * inward[i:i + chunk // 8]).to(device)
        _, rgb = model.field(x[:, None], torch.nn.functional.normalize(inward[i:i + chunk // 8], dim=-1).to(device),
                             None)
        colors[i:i + chunk // 8] = rgb[:, 0].float().cpu()
    return Mesh(verts.numpy(), faces.astype(np.int64), colors.clamp(0, 1).numpy())
