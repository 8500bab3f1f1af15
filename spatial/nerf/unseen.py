"""Space no training photo sees, kept empty (`--losses.unseen`).

A NeRF learns density only along the rays of its training photos. Space outside every photo's view is never
rendered in training, so its density is whatever the hash grids' shared rows and the MLP give it there; a view that
looks into such space (a held-out photo at the end of a walk, the viewer's camera stepped aside) draws that as haze.
On sceaux_castle the first held-out photo stands at the end of the walk: 64% of the left third of its render lay in
space no training camera sees, as a white-green haze a few units in front of it (castle at about 11), where the
splats, which only move where photos pull them, draw the castle.

The fix assumes the simplest world that explains the photos: empty wherever none of them looks. Once, the capture's
space is cut into `RESOLUTION`^3 cells of the hash grid's own coordinates (the contracted cube of an unbounded scene,
so the far shells are covered as well as the middle); a cell is seen when one of its corners projects into some
training photo in front of its camera (so a cell a view's edge cuts through is seen). Every step, `POINTS` random
points in the unseen cells have their density pushed down, in the radiance field and in every proposal field (which
place the samples, so must not keep density there either). The penalty is log(1 + optical depth over 1% of the
scene radius): its gradient in the fields' log-density stays near 1 for dense haze, where 1 - exp(-depth) would
vanish. On sceaux (configs/nerf.py) it took that third's near haze from 66% to 4% of its pixels; a 64^3 grid whose
seen cells were grown by one cell left 28-32%, the haze lying within a cell of a view's edge.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spatial.cameras import CameraModel, Cameras
from spatial.nerf.field import SpaceMap

RESOLUTION = 128  # cells per side of the grid of seen space (a cell: 1/32 of the radius in the middle)
POINTS = 4096  # random points in unseen space per step
LENGTH = 0.01  # the penalty's nominal length, as a share of the scene radius
CHUNK = 1 << 22  # (camera, corner) pairs projected at a time: ~50 MB a tensor however many photos


def extent(space: SpaceMap) -> float:
    """Half the side of the grid's cube: 1 for a box, 2 for an unbounded scene's contracted cube."""
    return 1.0 if space.bounded else 2.0


def grid_to_world(space: SpaceMap, q: Tensor) -> Tensor:
    """World points `[N, 3]` of points `[N, 3]` in the grid's cube: [-1, 1] for a box, [-2, 2] (contracted) for an
    unbounded scene. The inverse of `SpaceMap`'s map (before its shift to [0, 1])."""
    if not space.bounded:  # invert the contraction: |q| = 2 - 1/|p| beyond the unit cube (L-infinity norms)
        m = q.abs().amax(-1, keepdim=True).clamp(min=1e-6, max=2 - 1e-3)
        q = torch.where(m <= 1, q, q / (m * (2 - m)))
    return space.center.to(q) + q * space.half_size.to(q)


def unseen_cells(cameras: Cameras, space: SpaceMap, resolution: int = RESOLUTION) -> Tensor:
    """Indices `[U]` (int64, into the flattened `resolution`^3 grid, x fastest) of the cells no camera of `cameras`
    `[C]` sees any corner of, on the cameras' device. A panorama sees every direction, so with one there are none."""
    device = cameras.cam_to_world.device
    if cameras.model == CameraModel.EQUIRECTANGULAR or len(cameras) == 0:
        return torch.zeros(0, dtype=torch.int64, device=device)
    n = resolution + 1
    axis = torch.linspace(-extent(space), extent(space), n, device=device)  # [G + 1] the cells' corners
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    corners = torch.stack([x, y, z], -1).reshape(-1, 3)  # [(G + 1)^3, 3] in the grid's cube
    near = 1e-3 * space.radius
    seen = torch.zeros(len(corners), dtype=torch.bool, device=device)
    width, height = cameras.width.float()[:, None], cameras.height.float()[:, None]  # [C, 1]
    chunk = max(CHUNK // len(cameras), 1024)
    for i in range(0, len(corners), chunk):
        pix, depth = cameras.project(grid_to_world(space, corners[i:i + chunk]))  # [C, N, 2], [C, N]
        inside = (depth > near) & (pix[..., 0] >= 0) & (pix[..., 0] <= width) \
            & (pix[..., 1] >= 0) & (pix[..., 1] <= height)  # [C, N]
        seen[i:i + chunk] = inside.any(0)
    # a cell is seen when any of its 8 corners is: a view's edge cutting through a cell leaves one inside
    cell_seen = torch.nn.functional.max_pool3d(seen.float().reshape(1, 1, n, n, n), 2, stride=1)
    return torch.nonzero(cell_seen.reshape(-1) == 0)[:, 0]


def unseen_points(cells: Tensor, space: SpaceMap, count: int, generator: torch.Generator,
                  resolution: int = RESOLUTION) -> Tensor:
    """`count` random world points `[count, 3]` in the cells `[U]` (from `unseen_cells`, at least one), uniform
    within each cell; drawn on the cells' device, no host read."""
    device = cells.device
    pick = cells[torch.randint(len(cells), (count,), generator=generator, device=device)]  # [N]
    ijk = torch.stack([pick % resolution, pick // resolution % resolution, pick // resolution ** 2], -1)  # [N, 3]
    jitter = torch.rand(count, 3, generator=generator, device=device)
    q = ((ijk.float() + jitter) / resolution * 2 - 1) * extent(space)  # [N, 3] in the grid's cube
    return grid_to_world(space, q)


def unseen_penalty(sigma: Tensor, space: SpaceMap) -> Tensor:
    """Mean of log(1 + optical depth over `LENGTH` of the radius) for densities `[N]` at unseen points (0-dim)."""
    return torch.log1p(sigma * (space.density_scale * space.radius * LENGTH)).mean()
