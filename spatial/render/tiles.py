"""Tile binning: which Gaussians touch which screen tiles, depth-sorted within each tile.

Indices only (no gradients). The intersection list is ordered by (tile, depth), as gsplat's `isect_tiles` +
`isect_offset_encode` produce it, so each tile reads a contiguous range.

How many intersections there are is data: the lists cannot be allocated before the host knows it. Every camera's
count per tile is found on the device first (each Gaussian adds one to a rectangle of tiles, summed as a 2D prefix
sum of the rectangles' corners), and read by the host in one copy, which is the render's one wait for the device.
Everything after it has sizes the host knows, and the compositing plans its chunks from the same counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class TileBins:
    gaussian_ids: Tensor  # [M] int64, Gaussian of each intersection, sorted by (tile, depth)
    offsets: Tensor  # [T + 1] int64, intersections of tile t are gaussian_ids[offsets[t]:offsets[t+1]]
    counts: Tensor  # [T] int64, intersections per tile (on the device)
    host_counts: list[int]  # the same T counts, on the host
    tiles_x: int
    tiles_y: int


@torch.no_grad()
def bin_gaussians(means2d: Tensor, radii: Tensor, depths: Tensor, width: int, height: int, tile_size: int) -> TileBins:
    """Bins for one camera: `means2d [N, 2]`, `radii [N, 2]` (0 = culled), `depths [N]`."""
    return bin_cameras(means2d[None], radii[None], depths[None], width, height, tile_size)[0]


@torch.no_grad()
def bin_cameras(means2d: Tensor, radii: Tensor, depths: Tensor, width: int, height: int,
                tile_size: int) -> list[TileBins]:
    """Bins for each of C cameras: `means2d [C, N, 2]`, `radii [C, N, 2]` int (0 = culled), `depths [C, N]`."""
    C, N = depths.shape
    device = means2d.device
    tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
    lo, hi, span = tile_rectangles(means2d, radii, tiles_x, tiles_y, tile_size)  # [C, N, 2] each
    per_gaussian = span[..., 0] * span[..., 1]  # [C, N] tiles each Gaussian touches (0 when culled)
    per_tile = _count_per_tile(lo, hi, per_gaussian > 0, tiles_x, tiles_y)  # [C, T] with T = tiles_x * tiles_y
    host = per_tile.tolist()  # the one wait for the device: every size below follows from these counts
    offsets = torch.cat([per_tile.new_zeros(C, 1), torch.cumsum(per_tile, 1)], 1)  # [C, T + 1]
    bins = []
    for c in range(C):
        M = sum(host[c])
        order = torch.argsort(depths[c], stable=True)  # [N] near to far; culled Gaussians have no tiles
        n = per_gaussian[c, order]  # [N]
        owner = torch.repeat_interleave(torch.arange(N, device=device), n, output_size=M)  # [M] into `order`
        first = torch.cumsum(n, 0) - n  # [N] where each Gaussian's intersections start
        k = torch.arange(M, device=device) - first[owner]  # index within the Gaussian's rectangle
        gid = order[owner]  # [M]
        width_in_tiles = span[c, gid, 0].clamp_min(1)
        tile = (lo[c, gid, 1] + k // width_in_tiles) * tiles_x + lo[c, gid, 0] + k % width_in_tiles
        by_tile = torch.argsort(tile, stable=True)  # stable: keeps the depth order within a tile
        bins.append(TileBins(gid[by_tile], offsets[c], per_tile[c], host[c], tiles_x, tiles_y))
    return bins


def tile_rectangles(means2d: Tensor, radii: Tensor, tiles_x: int, tiles_y: int,
                    tile_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """The tiles each Gaussian's bounding box covers: first tile `lo`, one past the last `hi` and the number `span`
    along x and y, each `[..., 2]` int64 (span 0 for a culled Gaussian)."""
    visible = (radii > 0).all(-1, keepdim=True)  # [..., 1]
    centre, r = means2d.detach(), radii.to(means2d.dtype)
    lo = torch.floor((centre - r) / tile_size).long()
    hi = torch.ceil((centre + r) / tile_size).long()
    lo = torch.stack([lo[..., 0].clamp(0, tiles_x), lo[..., 1].clamp(0, tiles_y)], -1)
    hi = torch.stack([hi[..., 0].clamp(0, tiles_x), hi[..., 1].clamp(0, tiles_y)], -1)
    span = torch.where(visible, (hi - lo).clamp_min(0), torch.zeros_like(lo))
    return lo, hi, span


def _count_per_tile(lo: Tensor, hi: Tensor, touches: Tensor, tiles_x: int, tiles_y: int) -> Tensor:
    """Gaussians per tile `[C, T]`: each Gaussian that `touches` a tile adds one over its rectangle `lo`..`hi`
    (`[C, N, 2]`), as +1/-1 at the rectangle's four corners of a `[C, tiles_y + 1, tiles_x + 1]` grid whose 2D
    prefix sum is the count (no list of intersections needed, so no size the host must know)."""
    C = lo.shape[0]
    side = tiles_x + 1
    weight = touches.long()  # [C, N]
    camera = torch.arange(C, device=lo.device)[:, None]  # [C, 1]

    def cell(x: Tensor, y: Tensor) -> Tensor:  # flat grid index [C, N]
        return (camera * (tiles_y + 1) + y) * side + x

    corners = torch.cat([cell(lo[..., 0], lo[..., 1]), cell(hi[..., 0], lo[..., 1]),
                         cell(lo[..., 0], hi[..., 1]), cell(hi[..., 0], hi[..., 1])], 1)  # [C, 4N]
    signs = torch.cat([weight, -weight, -weight, weight], 1)  # [C, 4N]
    grid = torch.zeros(C * (tiles_y + 1) * side, dtype=torch.long, device=lo.device)
    grid.index_add_(0, corners.reshape(-1), signs.reshape(-1))
    grid = grid.reshape(C, tiles_y + 1, side).cumsum(1).cumsum(2)
    return grid[:, :tiles_y, :tiles_x].reshape(C, tiles_y * tiles_x)
