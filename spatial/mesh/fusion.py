"""Surfaces from rendered views: depth maps fused into a TSDF volume, or unprojected into points.

Works with anything that renders RGB, alpha and expected depth for a camera (`SplatModel.render_frames`
today, a NeRF tomorrow): the renders are the only input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from spatial.cameras import Cameras, pixel_centers
from spatial.errors import SpatialError
from spatial.mesh.files import Mesh
from spatial.mesh.tsdf import TSDFVolume
from spatial.render import RenderOutput


@dataclass
class FusionConfig:
    resolution: int = 256
    """Voxels along the longest side of the fused region (memory grows with its cube: 256 needs ~0.3 GB)."""
    trunc_voxels: float = 4.0
    """Truncation distance of the signed distance, in voxels: larger smooths more and fills small holes."""
    min_alpha: float = 0.5
    """Pixels whose accumulated opacity is below this are treated as empty (no surface)."""
    bounds_percentile: float = 1.0
    """The fused box spans this percentile to 100 minus it of the depth points on each axis (drops floaters)."""
    bounds_padding: float = 0.05
    """The box is grown by this fraction of its size on every side."""


def depth_points(out: RenderOutput, camera: Cameras, min_alpha: float = 0.5) -> tuple[Tensor, Tensor]:
    """World points `[P, 3]` and colours `[P, 3]` of the covered pixels of one render."""
    depth, alpha, rgb = out.depth[0, ..., 0].cpu(), out.alpha[0, ..., 0].cpu(), out.rgb[0].cpu()
    H, W = depth.shape
    covered = (alpha >= min_alpha) & (depth > 0)
    uv = pixel_centers(W, H).reshape(H, W, 2)[covered]  # [P, 2]
    points = camera.unproject(uv[None], depth[covered][None])[0]
    return points, rgb[covered]


def mesh_from_depth(renders: Iterable[RenderOutput], cameras: Cameras, config: FusionConfig | None = None,
                    on_view: Callable[[int, int], None] | None = None) -> Mesh:
    """Fuse one render per camera of `cameras` into a TSDF and extract a vertex-coloured mesh."""
    config = config or FusionConfig()
    views = []
    for i, out in enumerate(renders):
        views.append((out.depth[0, ..., 0].cpu(), out.alpha[0, ..., 0].cpu(), out.rgb[0].cpu()))
        if on_view is not None:
            on_view(i + 1, 2 * len(cameras))
    cams = cameras.to("cpu")
    lo, hi = _bounds(views, cams, config)
    voxel = float((hi - lo).max()) / config.resolution
    volume = TSDFVolume(lo, hi, voxel, config.trunc_voxels)
    for i, (depth, alpha, rgb) in enumerate(views):
        depth = torch.where(alpha >= config.min_alpha, depth, torch.zeros_like(depth))
        volume.integrate(depth, rgb, cams.world_to_cam[i], cams.K[i])
        if on_view is not None:
            on_view(len(views) + i + 1, 2 * len(views))
    vertices, faces, colors = volume.extract()
    if len(faces) == 0:
        raise SpatialError("no surface found: the renders are empty or the model is transparent "
                           f"(no pixel reached opacity {config.min_alpha})")
    return Mesh(vertices, faces, colors)


def _bounds(views, cams: Cameras, config: FusionConfig) -> tuple[Tensor, Tensor]:
    points = []
    for i, (depth, alpha, _) in enumerate(views):
        H, W = depth.shape
        covered = (alpha >= config.min_alpha) & (depth > 0)
        idx = torch.nonzero(covered.reshape(-1))[:, 0]
        idx = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(i))[:20000]]
        uv = pixel_centers(W, H).reshape(-1, 2)[idx]
        points.append(cams[i].unproject(uv[None], depth.reshape(-1)[idx][None])[0])
    if not points or sum(len(p) for p in points) == 0:
        raise SpatialError(f"no rendered pixel reached opacity {config.min_alpha}; nothing to fuse")
    pts = torch.cat(points)
    q = config.bounds_percentile / 100
    lo, hi = torch.quantile(pts, q, dim=0), torch.quantile(pts, 1 - q, dim=0)
    pad = (hi - lo) * config.bounds_padding
    return lo - pad, hi + pad
