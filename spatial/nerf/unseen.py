"""Space fewer than two training photos see, kept empty (`--losses.unseen`, `--losses.lone`).

A NeRF learns density only along the rays of its training photos. Space outside every photo's view is never
rendered in training, so its density is whatever the hash grids' shared rows and the MLP give it there; a view that
looks into such space (a held-out photo at the end of a walk, the viewer's camera stepped aside) draws that as haze.
On sceaux_castle the first held-out photo stands at the end of the walk: 64% of the left third of its render lay in
space no training camera sees, as a white-green haze a few units in front of it (castle at about 11), where the
splats, which only move where photos pull them, draw the castle.

The fix assumes the simplest world that explains the photos: empty wherever none of them looks. A point is seen
(`Sight`) when it projects into some training photo, in front of its camera, and is not hidden behind the sparse
points that photo sees there: each photo is cut into `TILES` tiles across, and beyond `BEHIND` times the farthest
point of a tile and its eight neighbours is hidden (a tile without points around hides nothing: sky, or a wall too
plain to match). Once, the capture's space is cut into `RESOLUTION`^3 cells of the hash grid's own coordinates (the
contracted cube of an unbounded scene, so the far shells are covered as well as the middle), and the cells not
wholly seen (some corner unseen) are kept. Every step `POINTS` random points are drawn in those cells, and at the
ones no photo sees the density is pushed down, in the radiance field and in every proposal field (which place the
samples, so must not keep density there either). The test is exact per point, so a haze hugging a view's edge is
reached: with a grid alone (a cell seen when a corner was), such haze stayed within a cell of the edge.

The penalty is log(1 + optical depth over 1% of the scene radius): its gradient in the fields' log-density stays
near 1 for dense haze, where 1 - exp(-depth) would vanish. Measured on sceaux (single runs of the `capture` preset,
3000 steps at 1/4 size; held-out PSNR, then its two photos `100_7100` and `100_7108`): without the loss 12.65 dB
with 66% of the first photo's left third nearer than 5 units (the castle at about 11); cells by corners, 4096
points: 13.00 dB (7.51, 18.50), 4%; 1024 points: 13.17 (7.62, 18.72); with the sparse points' hiding: 13.47 (7.91,
19.03); and the exact test per point (this): 13.54 dB (8.06, 19.01), 3%. The points are looked up in the same
pass of each field as the step's samples (`NerfModel.forward`'s `extra`): a pass of their own filled a second
gradient of each whole hash table, 20-40 ms of a 110-140 ms step on 2 cores; together, no measurable time.

One photo alone cannot say how far a surface is: what only it sees, it can paint at any distance and no other photo
objects. On sceaux the end of the castle's left wing lies at the left edge of the training photo `100_7101`, 9-11
units away, where four to seven other photos see it at their own edges; the NeRF painted it on a sheet 6-7 units
away, which only `100_7101` sees, and `100_7100`, held out 1.8 units to the left, looked past that sheet into the
sky (white streaks where the wing should be). So "seen" means seen by `PHOTOS` (two) photos, for the unseen points
as for the rays: `--losses.lone` adds, along every training ray, the weight of its samples in space fewer than two
photos see (`lone_weight`), which moves the paint to where other photos check it. Single runs of `capture`, 3000
steps at 1/4 size (held-out PSNR, then `100_7100`, `100_7108`): two photos for the unseen points alone 13.98 dB
(7.95, 20.00), the wing still streaked; with the rays' lone weight at 0.01 (the preset) 13.28 dB (7.80, 18.76), the
wing drawn where the splats draw it, the median depth over that photo's left third 8.7 units (5180 before: sky);
at 0.05 the wing drawn but the facade blurred, 13.46 dB (SSIM 0.49 against 0.52 at 0.01). The midpoints are tested
with the rays' own samples, no extra pass of any field: a step took 6% longer (324 s against 304 s for 3000).
Monstree over the preset's 6000 steps: 20.90 dB, SSIM 0.704 (with one photo's sight enough: 20.86 dB, 0.697).

Which point of an interval is tested was chosen by measurement: its midpoint in the normalised spacing, which in
the contracted far intervals lies well before the distance midpoint where the field looks up its density. Single
runs as above (3000 steps): tested at the field's own points (the distance midpoints), 12.56 dB (7.59, 17.54), white
haze where the wing should be (median depth of the left third 4837 units); there without the sparse points' hiding
(a point lone when fewer than two photos' views hold it), 14.12 dB (8.10, 20.13) and SSIM 0.57, sharper but with a
haze in front of the wing. A likely reason, not measured apart: far samples behind the points a photo sees count
as hidden, so testing their distance midpoints pushes sky out of the far intervals and into haze nearer the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from spatial.cameras import CameraModel, Cameras
from spatial.nerf.depth_prior import DepthPoints
from spatial.nerf.field import SpaceMap
from spatial.nerf.sampling import Spacing

RESOLUTION = 128  # cells per side of the grid of seen space (a cell: 1/32 of the radius in the middle)
POINTS = 1024  # random points in unseen space per step
LENGTH = 0.01  # the penalty's nominal length, as a share of the scene radius
TILES = 16  # tiles across a photo's longer side, for what its sparse points hide
PHOTOS = 2  # space fewer training photos see than this is kept empty: one alone cannot say how far a surface is
BEHIND = 2.0  # space farther than this times a tile's farthest sparse point is hidden from that camera
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


@dataclass
class Sight:
    """What the training photos see: a world point is seen when it projects into some photo, in front of its camera,
    and (with the sparse points) not hidden behind the points that photo sees there (`hidden_beyond`)."""

    cameras: Cameras  # [C] the training cameras
    near: float  # nearer than this to a camera's plane is not seen by it
    hidden: Tensor | None = None  # [C, T] per tile (`tile_grid`), the distance beyond which space is hidden
    tile_size: Tensor | None = None  # [C, 1] pixels per tile side
    tiles_across: int = 0
    photos: int = 1  # seen: by at least this many of the photos

    @staticmethod
    def of(cameras: Cameras, space: SpaceMap, points: DepthPoints | None = None, photos: int = 1) -> Sight:
        device = cameras.cam_to_world.device
        if points is None:
            return Sight(cameras, 1e-3 * space.radius, photos=photos)
        size, across, _ = tile_grid(cameras)
        return Sight(cameras, 1e-3 * space.radius, hidden_beyond(cameras, points.to(device)),
                     size.to(device)[:, None], across, photos)

    def seen(self, world: Tensor) -> Tensor:
        """`[N]` bool for world points `[N, 3]`: at least `photos` training photos see the point."""
        return self.seen_by(world).sum(0) >= self.photos

    def seen_by(self, world: Tensor) -> Tensor:
        """`[C, N]` bool for world points `[N, 3]`: which training photos see each point."""
        cameras = self.cameras
        pix, depth = cameras.project(world)  # [C, N, 2], [C, N]
        inside = (depth > self.near) & (pix[..., 0] >= 0) & (pix[..., 0] <= cameras.width.float()[:, None]) \
            & (pix[..., 1] >= 0) & (pix[..., 1] <= cameras.height.float()[:, None])  # [C, N]
        if self.hidden is not None:  # and not behind the sparse points that part of the photo sees
            size = self.tile_size
            tile = torch.where(inside, tile_of(pix[..., 0], pix[..., 1], size, self.tiles_across), 0)  # [C, N]
            inside &= (world[None] - cameras.centers[:, None]).norm(dim=-1) <= self.hidden.gather(1, tile)
        return inside


def tile_grid(cameras: Cameras) -> tuple[Tensor, int, int]:
    """Each camera's tile side in pixels `[C]` (`TILES` across its longer side), and the tiles across and down
    that cover the largest image with the smallest tiles (tile indices are row-major over that grid)."""
    size = torch.maximum(cameras.width, cameras.height).float() / TILES  # [C]
    smallest = float(size.min())
    return size, int(float(cameras.width.max()) // smallest) + 1, int(float(cameras.height.max()) // smallest) + 1


def tile_of(x: Tensor, y: Tensor, size: Tensor, across: int) -> Tensor:
    """The tile (row-major, `across` tiles a row) of pixel positions `x, y` in tiles of `size` pixels (int64)."""
    return (y / size).long() * across + (x / size).long()


def hidden_beyond(cameras: Cameras, points: DepthPoints) -> Tensor:
    """`[C, T]` per camera and tile (`tile_grid`): the distance beyond which space is hidden behind the sparse points
    that camera sees there, `BEHIND` times the farthest of them in the tile and its eight neighbours; infinite where
    any of those nine tiles holds none (sky, or a surface too plain to match: nothing says what is behind it)."""
    device = points.distance.device
    size, tx, ty = tile_grid(cameras)
    size, widths = size.to(device)[points.image], cameras.width.to(device)[points.image]  # [D]
    x, y = points.pixel % widths, points.pixel // widths
    tile = points.image * (tx * ty) + tile_of(x, y, size, tx)  # [D]
    far = torch.full((len(cameras) * tx * ty,), float("inf"), device=device)  # infinite where none
    far = far.scatter_reduce(0, tile, points.distance, "amax", include_self=False).reshape(len(cameras), 1, ty, tx)
    # the farthest of nine tiles, and infinite when any of them is empty: only the inside of a surface hides
    return BEHIND * F.max_pool2d(far, 3, stride=1, padding=1).reshape(len(cameras), -1)


def unseen_cells(sight: Sight, space: SpaceMap, resolution: int = RESOLUTION) -> Tensor:
    """Indices `[U]` (int64, into the flattened `resolution`^3 grid, x fastest) of the cells not wholly seen (some
    corner of theirs unseen), on the cameras' device: where `unseen_points` draws and `Sight.seen` then picks. A
    panorama sees every direction, so with one there are none."""
    cameras = sight.cameras
    device = cameras.cam_to_world.device
    if cameras.model == CameraModel.EQUIRECTANGULAR or len(cameras) == 0:
        return torch.zeros(0, dtype=torch.int64, device=device)
    n = resolution + 1
    axis = torch.linspace(-extent(space), extent(space), n, device=device)  # [G + 1] the cells' corners
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    corners = torch.stack([x, y, z], -1).reshape(-1, 3)  # [(G + 1)^3, 3] in the grid's cube
    seen = torch.zeros(len(corners), dtype=torch.bool, device=device)
    chunk = max(CHUNK // len(cameras), 1024)
    for i in range(0, len(corners), chunk):
        seen[i:i + chunk] = sight.seen(grid_to_world(space, corners[i:i + chunk]))
    # a cell is wholly seen when all 8 of its corners are
    wholly = -F.max_pool3d(-seen.float().reshape(1, 1, n, n, n), 2, stride=1)
    return torch.nonzero(wholly.reshape(-1) == 0)[:, 0]


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


def unseen_penalty(sigma: Tensor, space: SpaceMap, unseen: Tensor) -> Tensor:
    """Mean over points of log(1 + optical depth over `LENGTH` of the radius), for densities `sigma [N]` at points
    where `unseen [N]` (float 0/1) is 1 (0-dim)."""
    return (torch.log1p(sigma * (space.density_scale * space.radius * LENGTH)) * unseen).mean()


def lone_weight(sight: Sight, origins: Tensor, dirs: Tensor, edges: Tensor, weights: Tensor,
                spacing: Spacing) -> Tensor:
    """Mean over rays `origins, dirs [R, 3]` of their weight `[R, S]` in intervals `edges [R, S + 1]` (normalised
    `spacing`) whose midpoints in that spacing (not the distance midpoints the field samples at: the module's
    docstring says why) fewer than `sight.photos` photos see (0-dim). No host read."""
    with torch.no_grad():
        t = spacing.to_t((edges[:, 1:] + edges[:, :-1]) / 2)  # [R, S] the midpoints' distances
        points = origins[:, None] + dirs[:, None] * t[..., None]  # [R, S, 3]
        lone = (~sight.seen(points.reshape(-1, 3))).reshape(t.shape).to(weights.dtype)  # [R, S]
    return (weights * lone).sum(-1).mean()
