"""The sparse points as priors for the NeRF: depth (DS-NeRF's idea, as a line-of-sight loss) and free space.

A capture's structure from motion triangulated points that its photos see; a splat model starts from them, a NeRF
starts from empty space and, with few photos, explains each photo with haze in front of its camera that no other
photo contradicts (on sceaux_castle's 9 training photos the held-out views were mostly such haze). Here each
training photo's visible points become rays with a known distance to the first surface: along such a ray the
weight in front of the point (by more than `BAND` of its distance) is pushed to zero, and the weight up to just
behind it to one.

Free space (`--losses.free`): the points also say how far in front of each training camera nothing is: half the
distance of the nearest 1% of the points its photo sees. Along every ray of that photo, weight nearer than that is
pushed to zero. This is what the few-photo NeRF fills with haze (FreeNeRF's occlusion regularisation, with the
distance taken from the capture instead of a fixed count of samples), and unlike the rays of the depth prior it
reaches every pixel, sky included. On sceaux_castle it held the NeRF's held-out PSNR at 12.9 dB as it trained
(12.86, 12.86, 12.92 dB at 1333, 2666 and 4000 steps; without it 9.75-10.9 dB and falling; configs/nerf.py).

Which points a photo sees: the reconstruction's tracks where the scene has them (a COLMAP folder's points3D lists
the photos each point was matched in); elsewhere (a transforms.json with a point cloud) a point is kept where no
other point projects much nearer within a few pixels of it. That test is weak: on monstree, photographed all around
a trunk, it kept 35-96% of the points per photo where the tracks say 3-39%, and the points of the trunk's far side
taught the NeRF to see through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from spatial.cameras import CameraModel, Cameras

# relative distance around a point taken as its surface (SfM points are good to a few percent). Measured with
# --losses.depth 0.05, 2000 steps at 1/4 size: 0.1 blurred monstree (18.40 dB, off 20.26) and helped sceaux less
# (11.24 dB, off 9.9-10.9); 0.03 gives monstree 19.65 dB and sceaux 13.46 dB: a band wider than a close-up's
# relief (10% of 3-7 units on monstree's trunk) lets the prior smear its surface.
BAND = 0.03
FREE, NEAREST = 0.5, 0.01  # --losses.free: half the distance of the nearest 1% of a photo's points is empty
CELL = 8  # pixels per cell of the occlusion test (at the training size)
NEARER = 0.9  # a point is hidden when another within one cell is nearer than this share of its depth


@dataclass
class DepthPoints:
    """Rays through training pixels with the distance of the sparse point seen there."""

    image: Tensor  # [D] int64, index into the trainer's training images
    pixel: Tensor  # [D] int64, row-major pixel index within that image
    distance: Tensor  # [D] float32, along the unit ray through the pixel's centre, world units

    def to(self, device) -> DepthPoints:
        return DepthPoints(self.image.to(device), self.pixel.to(device), self.distance.to(device))


def visible_points(cameras: Cameras, points: Tensor, views: Tensor | None = None) -> DepthPoints | None:
    """The sparse points `[P, 3]` each of the pinhole `cameras` `[C]` sees: those `views` `[N, 2]` (camera, point)
    pairs name, or without them those not behind nearer points; in front and inside the image either way. None when
    there are none (no points, or panoramas, which this prior does not handle)."""
    if points.shape[0] == 0 or cameras.model == CameraModel.EQUIRECTANGULAR:
        return None
    images, pixels, distances = [], [], []
    for c in range(len(cameras)):
        cam = cameras[c]
        xyz = points if views is None else points[views[views[:, 0] == c, 1]]  # [P', 3]
        uv, z = (x[0] for x in cam.project(xyz))  # [P', 2], [P']
        W, H = int(cam.width[0]), int(cam.height[0])
        inside = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
        uv, z, xyz = uv[inside], z[inside], xyz[inside]
        if z.numel() == 0:
            continue
        if views is None:
            seen = _not_behind_nearer(uv, z, W, H)
            uv, xyz = uv[seen], xyz[seen]
        x, y = uv[:, 0].long().clamp(0, W - 1), uv[:, 1].long().clamp(0, H - 1)
        images.append(torch.full_like(x, c))
        pixels.append(y * W + x)
        distances.append((xyz - cam.centers[0]).norm(dim=-1).float())
    if not images:
        return None
    return DepthPoints(torch.cat(images), torch.cat(pixels), torch.cat(distances))


def _not_behind_nearer(uv: Tensor, z: Tensor, W: int, H: int) -> Tensor:
    """`[P]` bool: no other point lands within a cell (`CELL` pixels) around this one's much nearer to the camera."""
    cells_x, cells_y = -(-W // CELL), -(-H // CELL)
    cell = (uv[:, 1] // CELL).long() * cells_x + (uv[:, 0] // CELL).long()
    nearest = torch.full((cells_y * cells_x,), float("inf"), device=z.device).scatter_reduce(0, cell, z, "amin")
    # the nearest depth among a cell and its eight neighbours
    nearest = -F.max_pool2d(-nearest.reshape(1, 1, cells_y, cells_x), 3, stride=1, padding=1).reshape(-1)
    return z * NEARER <= nearest[cell]


def line_of_sight_loss(edges: Tensor, weights: Tensor, lo: Tensor, hi: Tensor, mask: Tensor) -> Tensor:
    """Per ray of `edges [R, S + 1]` and `weights [R, S]` with a known surface between `lo` and `hi [R]` (in the
    edges' normalised spacing): the weight in front of `lo` plus the weight missing up to `hi`, averaged over the
    rays of `mask [R]` (float 0/1: rays without a known surface add nothing)."""
    per_ray = weight_before(edges, weights, lo) + (1 - weight_before(edges, weights, hi))
    return (per_ray * mask).sum() / mask.sum().clamp(min=1)


def weight_before(edges: Tensor, weights: Tensor, s: Tensor) -> Tensor:
    """`[R]`: the weight of the intervals of `edges [R, S + 1]` whose midpoints lie before `s [R]`."""
    mids = (edges[:, 1:] + edges[:, :-1]) / 2  # [R, S]
    return (weights * (mids < s[:, None])).sum(-1)


def free_distances(points: DepthPoints, images: int) -> Tensor:
    """`[I]` per training image, the distance in front of its camera taken as empty: `FREE` of its sparse points'
    `NEAREST` quantile distance (0 for an image that sees fewer than 10 points)."""
    free = torch.zeros(images, device=points.distance.device)
    for i in range(images):
        seen = points.distance[points.image == i]
        if seen.numel() >= 10:
            free[i] = FREE * torch.quantile(seen, NEAREST)
    return free
