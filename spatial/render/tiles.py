"""Tile binning: which Gaussians touch which screen tiles, depth-sorted within each tile.

Indices only (no gradients). The intersection list is ordered by (tile, depth), as gsplat's
`isect_tiles` + `isect_offset_encode` produce it, so each tile reads a contiguous range.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class TileBins:
    gaussian_ids: Tensor  # [M] int64, Gaussian of each intersection, sorted by (tile, depth)
    offsets: Tensor  # [T + 1] int64, intersections of tile t are gaussian_ids[offsets[t]:offsets[t+1]]
    tiles_x: int
    tiles_y: int


@torch.no_grad()
def bin_gaussians(means2d: Tensor, radii: Tensor, depths: Tensor, width: int, height: int, tile_size: int) -> TileBins:
    """Bins for one camera: `means2d [N, 2]`, `radii [N, 2]` (0 = culled), `depths [N]`."""
    tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
    visible = torch.nonzero((radii > 0).all(-1))[:, 0]
    visible = visible[torch.argsort(depths[visible], stable=True)]  # near to far
    centre, r = means2d[visible].detach(), radii[visible].to(means2d.dtype)
    lo = torch.floor((centre - r) / tile_size).long()
    hi = torch.ceil((centre + r) / tile_size).long()
    lo[:, 0].clamp_(0, tiles_x)
    hi[:, 0].clamp_(0, tiles_x)
    lo[:, 1].clamp_(0, tiles_y)
    hi[:, 1].clamp_(0, tiles_y)
    span = (hi - lo).clamp_min(0)  # [V, 2] tiles covered along x and y
    counts = span[:, 0] * span[:, 1]
    owner = torch.repeat_interleave(torch.arange(len(visible), device=counts.device), counts)  # [M]
    first = torch.cumsum(counts, 0) - counts
    k = torch.arange(owner.shape[0], device=counts.device) - first[owner]  # index within the owner's rectangle
    tx = lo[owner, 0] + k % span[owner, 0].clamp_min(1)
    ty = lo[owner, 1] + k // span[owner, 0].clamp_min(1)
    tile = ty * tiles_x + tx
    order = torch.argsort(tile, stable=True)  # stable: keeps the depth order within a tile
    per_tile = torch.bincount(tile, minlength=tiles_x * tiles_y)
    offsets = torch.zeros(tiles_x * tiles_y + 1, dtype=torch.long, device=counts.device)
    offsets[1:] = torch.cumsum(per_tile, 0)
    return TileBins(visible[owner[order]], offsets, tiles_x, tiles_y)
