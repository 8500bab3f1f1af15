"""Choosing Gaussians from a camera's picture, as an editor does on screen: the ones whose centres fall in a
rectangle, the front-most of them, and the surface point under a pixel.

    cam = Cameras(cam_to_world[None], K[None], width, height)
    mask = in_screen_rect(params["means"], cam, (10, 20), (200, 120))   # [N] bool
    mask &= front_most(params, cam, mask)                                # hidden ones dropped
    point = surface_point(params, cam, (100.5, 60.5))                     # [3] or None

Front-most comes from our renderer's depth (alpha-weighted camera z), rendered over a crop of the picture around
what is asked about, from the Gaussians whose centres project near it, so it costs a fraction of a whole render
even at a million Gaussians. The surface point composites the Gaussians along the one ray in 3D.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.render.options import ALPHA_MAX, ALPHA_MIN
from spatial.splats.model import render_splats
from spatial.transforms import quat_to_rotmat

NEAR = 0.01  # camera z below which a centre counts as behind the camera
FRONT_TOLERANCE = 0.05
"""A Gaussian is front-most when its centre is no farther than (1 + this) x the rendered depth at its pixel."""
CROP_MAX_SIDE = 256  # longest side, in pixels, of the depth render behind `front_most`


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
    """The world point `[3]` drawn at `pixel` (x, y): along the camera ray through it, where the opacity
    accumulated front to back reaches one half; None where it never does (nothing opaque there).

    Each Gaussian is taken in 3D at its peak along the ray (where the ray passes closest to its centre, in its
    own metric), so for the flat Gaussians that cover a surface the point lies on the surface itself, where a
    rendered depth (the blend of the Gaussians' centre depths) would sit in front of it."""
    means = params["means"].detach()
    uv, z = project(means, camera)
    K, c2w = camera.K[0].double().to(means.device), camera.cam_to_world[0].double().to(means.device)
    scales = torch.exp(params["scales"].detach()).double()  # [N, 3]
    # Gaussians whose 3-sigma footprint on screen may cover the pixel
    reach = 3 * scales.max(-1).values * K[0, 0] / z.clamp_min(NEAR) + 2
    target = torch.tensor([float(pixel[0]), float(pixel[1])], dtype=torch.float64, device=means.device)
    near = (z > NEAR) & ((uv - target).norm(dim=-1) <= reach)
    if not bool(near.any()):
        return None
    ray = c2w[:3, :3] @ torch.stack([(target[0] - K[0, 2]) / K[0, 0], (target[1] - K[1, 2]) / K[1, 1],
                                     torch.ones((), dtype=torch.float64, device=means.device)])
    origin = c2w[:3, 3]
    R = quat_to_rotmat(torch.nn.functional.normalize(params["quats"].detach()[near].double(), dim=-1))  # [M, 3, 3]
    inv_var = 1 / scales[near] ** 2  # [M, 3]
    d_local = torch.einsum("mji,j->mi", R, ray)  # the ray and the centre in each Gaussian's axes
    c_local = torch.einsum("mji,mj->mi", R, means[near].double() - origin)
    t = (d_local * inv_var * c_local).sum(-1) / (d_local * inv_var * d_local).sum(-1)  # [M] peak along the ray
    off = t[:, None] * d_local - c_local
    alpha = torch.sigmoid(params["opacities"].detach()[near].double()) * torch.exp(-0.5 * (off**2 * inv_var).sum(-1))
    alpha = torch.where((t > 0) & (alpha >= ALPHA_MIN), alpha.clamp(max=ALPHA_MAX), torch.zeros_like(alpha))
    order = t.argsort()
    t, alpha = t[order], alpha[order]
    covered = 1 - torch.cumprod(1 - alpha, 0)  # [M] opacity accumulated front to back
    half = int(torch.searchsorted(covered, torch.tensor([0.5], dtype=covered.dtype, device=covered.device)))
    if half >= len(t):
        return None
    return (origin + t[half] * ray).float()


def nearest(means: Tensor, point: Tensor) -> int:
    """Index of the centre `means [N, 3]` nearest to `point [3]`."""
    return int((means - point.to(means)).norm(dim=-1).argmin())


def drawn_mask(params: dict[str, Tensor], chosen: Tensor, camera: Cameras) -> Tensor:  # [H, W] bool
    """Where the `chosen` `[N]` Gaussians of raw `params` make at least half of a pixel the world covers (alpha at
    least 0.5) in the one-camera `camera`: a selection's silhouette as our renderer draws it."""
    from spatial.render.sh import C0

    sh0 = params["sh0"]
    one, zero = torch.full_like(sh0, 0.5 / C0), torch.full_like(sh0, -0.5 / C0)  # colour 1 and 0
    flat = {**params, "sh0": torch.where(chosen.to(sh0.device)[:, None, None], one, zero), "shN": params["shN"][:, :0]}
    out = render_splats(flat, camera.world_to_cam.to(sh0.device), camera.K.to(sh0.device), int(camera.width[0]),
                        int(camera.height[0]), 0, background=torch.zeros(3, device=sh0.device))
    share, alpha = out.rgb[0, ..., 0], out.alpha[0, ..., 0]
    return ((share >= 0.5 * alpha) & (alpha >= 0.5)).cpu()
