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
    voxel_size: float | None = None
    """Voxels of this size in scene units instead of `resolution` across the box."""


def depth_points(out: RenderOutput, camera: Cameras, min_alpha: float = 0.5) -> tuple[Tensor, Tensor]:
    """World points `[P, 3]` and colours `[P, 3]` of the covered pixels of one render."""
    return _covered_points(out.depth[0, ..., 0].cpu(), out.alpha[0, ..., 0].cpu(), out.rgb[0].cpu(), camera,
                           min_alpha)


def _covered_points(depth: Tensor, alpha: Tensor, rgb: Tensor, camera: Cameras, min_alpha: float,
                    limit: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Unproject pixels of `depth [H, W]` whose `alpha [H, W]` reaches `min_alpha` (at most `limit`, at random)."""
    H, W = depth.shape
    index = torch.nonzero(((alpha >= min_alpha) & (depth > 0)).reshape(-1))[:, 0]  # [P]
    if limit is not None and len(index) > limit:
        order = torch.randperm(len(index), generator=torch.Generator(device="cpu").manual_seed(seed), device="cpu")
        index = index[order.to(index.device)[:limit]]
    uv = pixel_centers(W, H, device=depth.device).reshape(-1, 2)[index]
    points = camera.unproject(uv[None], depth.reshape(-1)[index][None])[0]
    return points, rgb.reshape(-1, 3)[index]


def mesh_from_depth(renders: Iterable[RenderOutput], cameras: Cameras, config: FusionConfig | None = None,
                    on_view: Callable[[int, int], None] | None = None) -> Mesh:
    """Fuse one render per camera of `cameras` into a TSDF and extract a vertex-coloured mesh.

    Renders come from any device; each is copied to the CPU, where the volume lives (host memory is
    larger, and fusion is a small part of the time next to rendering).
    """
    config = config or FusionConfig()
    views = rendered_views(renders, on_view, 2 * len(cameras))
    vertices, faces, colors = fuse(views, cameras, config, on_view).extract()
    if len(faces) == 0:
        raise SpatialError("no surface found: the renders are empty or the model is transparent "
                           f"(no pixel reached opacity {config.min_alpha})")
    return Mesh(vertices, faces, colors)


def rendered_views(renders: Iterable[RenderOutput], on_view: Callable[[int, int], None] | None = None,
                   total: int = 0) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Each render's depth `[H, W]`, alpha `[H, W]` and colour `[H, W, 3]`, on the CPU."""
    views = []
    for i, out in enumerate(renders):
        views.append((out.depth[0, ..., 0].cpu(), out.alpha[0, ..., 0].cpu(), out.rgb[0].cpu()))
        if on_view is not None:
            on_view(i + 1, total)
    return views


def fuse(views: list[tuple[Tensor, Tensor, Tensor]], cameras: Cameras, config: FusionConfig,
         on_view: Callable[[int, int], None] | None = None,
         within: tuple[Tensor, float] | None = None) -> TSDFVolume:
    """The TSDF volume of `rendered_views` from `cameras`, over the box their covered pixels span, cut to the cube
    `within` = (centre `[3]`, half size) when given."""
    cams = cameras.to("cpu")
    lo, hi = _bounds(views, cams, config)
    if within is not None:
        center, half = within[0].detach().float().cpu(), float(within[1])
        lo, hi = torch.maximum(lo, center - half), torch.minimum(hi, center + half)
        if not bool((hi > lo).all()):
            raise SpatialError(f"the renders' surfaces all lie outside the cube of half size {half:.4g} around "
                               f"{[round(v, 3) for v in center.tolist()]}; widen it")
    voxel = config.voxel_size or float((hi - lo).max()) / config.resolution
    if float((hi - lo).max()) / voxel > 2048:
        raise SpatialError(f"voxels of {voxel:.4g} scene units make {float((hi - lo).max()) / voxel:,.0f} across the "
                           "world's box, above 2,048; choose larger voxels")
    volume = TSDFVolume(lo, hi, voxel, config.trunc_voxels)
    for i, (depth, alpha, rgb) in enumerate(views):
        depth = torch.where(alpha >= config.min_alpha, depth, torch.zeros_like(depth))
        volume.integrate(depth, rgb, cams.world_to_cam[i], cams.K[i])
        if on_view is not None:
            on_view(len(views) + i + 1, 2 * len(views))
    return volume


def _bounds(views, cams: Cameras, config: FusionConfig) -> tuple[Tensor, Tensor]:
    points = [_covered_points(depth, alpha, rgb, cams[i], config.min_alpha, limit=20000, seed=i)[0]
              for i, (depth, alpha, rgb) in enumerate(views)]
    if not points or sum(len(p) for p in points) == 0:
        raise SpatialError(f"no rendered pixel reached opacity {config.min_alpha}; nothing to fuse")
    pts = torch.cat(points)
    q = config.bounds_percentile / 100
    lo, hi = torch.quantile(pts, q, dim=0), torch.quantile(pts, 1 - q, dim=0)
    pad = (hi - lo) * config.bounds_padding
    return lo - pad, hi + pad
