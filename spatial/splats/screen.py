"""Choosing Gaussians from a camera's picture, as an editor does on screen: the ones whose centres fall in a
rectangle, the front-most of them, and the surface point under a pixel.

    cam = Cameras(cam_to_world[None], K[None], width, height)
    mask = in_screen_rect(params["means"], cam, (10, 20), (200, 120))   # [N] bool
    mask &= front_most(params, cam, mask)                                # hidden ones dropped
    point = surface_point(params, cam, (100.5, 60.5))                     # [3] or None

Front-most and the surface point come from our renderer's depth (alpha-weighted camera z), rendered over a crop
of the picture around what is asked about, from the Gaussians whose centres project near it, so they cost a
fraction of a whole render even at a million Gaussians.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.splats.model import render_splats

NEAR = 0.01  # camera z below which a centre counts as behind the camera
FRONT_TOLERANCE = 0.05
"""A Gaussian is front-most when its centre is no farther than (1 + this) x the rendered depth at its pixel."""
CROP_MAX_SIDE = 256  # longest side, in pixels, of the depth render behind `front_most`
PICK_WINDOW = 9  # side, in pixels, of the depth render behind `surface_point`


def project(means: Tensor, camera: Cameras) -> tuple[Tensor, Tensor]:
    """Pixel coordinates `[N, 2]` (float64) and camera z `[N]` of world points `[N, 3]` in a one-camera `camera`
    (pinhole: the viewer's cameras have no distortion)."""
    w2c = camera.world_to_cam[0].double().to(means.device)
    K = camera.K[0].double().to(means.device)
    p = means.double() @ w2c[:3, :3].T + w2c[:3, 3]  # [N, 3]
    z = p[:, 2]
    uv = p[:, :2] / z.clamp_min(1e-12)[:, None] * torch.stack([K[0, 0], K[1, 1]]) + K[:2, 2]
    return uv, z


def in_screen_rect(means: Tensor, camera: Cameras, rect_min, rect_max) -> Tensor:  # [N] bool
    """Centres in front of the camera whose projection lies in the pixel rectangle `[rect_min, rect_max]`
    (each (x, y); x right, y down, as in an image)."""
    uv, z = project(means, camera)
    lo = torch.tensor(rect_min, dtype=torch.float64, device=means.device)
    hi = torch.tensor(rect_max, dtype=torch.float64, device=means.device)
    return (z > NEAR) & (uv >= lo).all(-1) & (uv <= hi).all(-1)


def _depth_crop(params: dict[str, Tensor], camera: Cameras, lo: Tensor, hi: Tensor, max_side: int,
                uv: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor, float]:
    """Rendered depth and alpha `[h, w]` of the picture's region `[lo, hi]` (pixels, float64 [2] each), from the
    Gaussians whose centres project within a margin of it; with the region's origin and pixels-per-pixel scale."""
    margin = 0.25 * float((hi - lo).max()) + 8.0  # big Gaussians whose centres lie just outside still cover it
    near = (z > NEAR) & (uv >= lo - margin).all(-1) & (uv <= hi + margin).all(-1)
    scale = min(1.0, max_side / max(float((hi - lo).max()), 1.0))
    w, h = (max(int(math.ceil(float(s) * scale)), 1) for s in (hi - lo))
    K = camera.K[0].double().clone()
    K[:2, :2] *= scale
    K[:2, 2] = (K[:2, 2] - lo.cpu()) * scale
    device = params["means"].device
    p = {k: v.detach()[near] for k, v in params.items()}
    p["shN"] = p["shN"][:, :0]  # depth alone: no view-dependent colour needed
    out = render_splats(p, camera.world_to_cam.to(device), K[None].float().to(device), w, h, 0)
    return out.depth[0, ..., 0], out.alpha[0, ..., 0], lo, scale


def front_most(params: dict[str, Tensor], camera: Cameras, candidates: Tensor,
               tolerance: float = FRONT_TOLERANCE, max_side: int = CROP_MAX_SIDE) -> Tensor:  # [N] bool
    """Of `candidates [N]` (bool), those not hidden behind the surface our renderer draws at their centre's
    pixel: centre depth <= (1 + tolerance) x rendered depth, or little drawn there (alpha < 0.5)."""
    if not bool(candidates.any()):
        return candidates.clone()
    uv, z = project(params["means"], camera)
    lo, hi = uv[candidates].min(0).values.floor(), uv[candidates].max(0).values.ceil() + 1
    depth, alpha, lo, scale = _depth_crop(params, camera, lo, hi, max_side, uv, z)
    h, w = depth.shape
    pix = ((uv[candidates] - lo) * scale).long()
    px, py = pix[:, 0].clamp(0, w - 1), pix[:, 1].clamp(0, h - 1)
    d, a = depth[py, px].double(), alpha[py, px]
    keep = (z[candidates] <= (1 + tolerance) * d) | (a < 0.5)
    out = torch.zeros_like(candidates)
    out[candidates] = keep
    return out


def surface_point(params: dict[str, Tensor], camera: Cameras, pixel) -> Tensor | None:
    """The world point `[3]` our renderer draws at `pixel` (x, y): the camera ray at the rendered depth; None
    where nothing opaque is drawn (alpha < 0.5)."""
    uv, z = project(params["means"], camera)
    x, y = float(pixel[0]), float(pixel[1])
    half = PICK_WINDOW / 2
    lo = torch.tensor([x - half, y - half], dtype=torch.float64, device=uv.device)
    depth, alpha, lo, _ = _depth_crop(params, camera, lo, lo + PICK_WINDOW, PICK_WINDOW, uv, z)
    c = PICK_WINDOW // 2
    if float(alpha[c, c]) < 0.5:
        return None
    d = float(depth[c, c])
    K = camera.K[0].double()
    ray = torch.tensor([(x - float(K[0, 2])) / float(K[0, 0]), (y - float(K[1, 2])) / float(K[1, 1]), 1.0],
                       dtype=torch.float64)
    c2w = camera.cam_to_world[0].double()
    return (c2w[:3, :3] @ (ray * d) + c2w[:3, 3]).float()


def nearest(means: Tensor, point: Tensor) -> int:
    """Index of the centre `means [N, 3]` nearest to `point [3]`."""
    return int((means - point.to(means)).norm(dim=-1).argmin())
