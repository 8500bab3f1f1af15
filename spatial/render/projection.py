"""EWA splatting: 3D Gaussians to 2D screen-space Gaussians (Zwicker et al. 2001; 3DGS; gsplat).

The Jacobian of the perspective projection is evaluated at the centre, with the centre clamped to
1.3x the field of view as in gsplat so that Gaussians far off-screen do not explode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from spatial.render.options import ALPHA_MIN, EXTEND_MAX
from spatial.transforms import quat_to_rotmat


@dataclass
class Projected:
    means2d: Tensor  # [C, N, 2] pixels
    conics: Tensor  # [C, N, 3] inverse 2D covariance (a, b, c) of [[a, b], [b, c]]
    depths: Tensor  # [C, N] camera z
    opacities: Tensor  # [C, N] after the anti-aliasing compensation (if any)
    radii: Tensor  # [C, N, 2] int32, 0 where culled


class _Compensation(torch.autograd.Function):
    """sqrt(ratio) with gsplat's backward, 0.5 / (sqrt(ratio) + 1e-6): finite for a Gaussian that is flat on
    screen (ratio 0), where autograd's sqrt would give infinity and, through the clamp, NaN."""

    @staticmethod
    def forward(ctx, ratio: Tensor) -> Tensor:
        root = torch.sqrt(ratio)
        ctx.save_for_backward(root)
        return root

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (root,) = ctx.saved_tensors
        return grad * 0.5 / (root + 1e-6)


def covariances(quats: Tensor, scales: Tensor) -> Tensor:
    """World covariances `[N, 3, 3]` = R S S R^T from quaternions `[N, 4]` and scales `[N, 3]`."""
    M = quat_to_rotmat(quats) * scales[:, None, :]
    return M @ M.transpose(-1, -2)


def in_camera(means: Tensor, quats: Tensor, scales: Tensor, world_to_cam: Tensor) -> tuple[Tensor, Tensor]:
    """Centres `[C, N, 3]` and covariances `[C, N, 3, 3]` in each camera's frame (what every projection starts
    from)."""
    R, t = world_to_cam[:, None, :3, :3], world_to_cam[:, None, :3, 3]  # [C, 1, 3, 3], [C, 1, 3]
    p = (R @ means[None, :, :, None])[..., 0] + t  # [C, N, 3]
    return p, R @ covariances(quats, scales)[None] @ R.transpose(-1, -2)


def project(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] wxyz, any norm
    scales: Tensor,  # [N, 3] activated (positive)
    opacities: Tensor,  # [N] in 0-1
    world_to_cam: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    near: float = 0.01,
    far: float = 1e10,
    eps2d: float = 0.3,
    antialiased: bool = False,
) -> Projected:
    p, cov = in_camera(means, quats, scales, world_to_cam)  # [C, N, 3], [C, N, 3, 3]
    x, y, z = p.unbind(-1)
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]  # [C, 1]
    cx, cy = K[:, 0, 2, None], K[:, 1, 2, None]

    z_safe = torch.where(z.abs() < 1e-6, torch.full_like(z, 1e-6), z)
    lim_x_pos = (width - cx) / fx + 0.3 * (0.5 * width / fx)
    lim_x_neg = cx / fx + 0.3 * (0.5 * width / fx)
    lim_y_pos = (height - cy) / fy + 0.3 * (0.5 * height / fy)
    lim_y_neg = cy / fy + 0.3 * (0.5 * height / fy)
    tx = z_safe * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x / z_safe))
    ty = z_safe * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y / z_safe))
    zero = torch.zeros_like(z)
    J = torch.stack([
        torch.stack([fx / z_safe, zero, -fx * tx / z_safe**2], -1),
        torch.stack([zero, fy / z_safe, -fy * ty / z_safe**2], -1),
    ], -2)  # [C, N, 2, 3]
    screen = _conics(J @ cov @ J.transpose(-1, -2), opacities, eps2d, antialiased)
    means2d = torch.stack([fx * x / z_safe + cx, fy * y / z_safe + cy], -1)  # made after the conics, as always:
    # the order ops are made in is the order backward sums their gradients, which golden steps hold bit for bit
    return _boxes(means2d, z, *screen, width, height, near, far)


def project_equirect(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] wxyz, any norm
    scales: Tensor,  # [N, 3] activated (positive)
    opacities: Tensor,  # [N] in 0-1
    world_to_cam: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3] fx, fy: pixels per radian of longitude and latitude; cx, cy: the pixel straight ahead
    width: int,
    height: int,
    near: float = 0.01,
    far: float = 1e10,
    eps2d: float = 0.3,
    antialiased: bool = False,
) -> Projected:
    """EWA splatting onto an equirectangular panorama: `u = fx * longitude + cx` (longitude atan2(x, z), positive
    to the right), `v = fy * latitude + cy` (latitude atan2(y, sqrt(x^2 + z^2)), positive downwards, as y is). Each
    Gaussian is linearised at its centre with the Jacobian of that map, as `project` does with the pinhole's: a
    footprint is as accurate as a pinhole camera's looking straight at the Gaussian. `depths` is the distance
    from the camera, which is what orders Gaussians along a ray in every direction. Within a Gaussian's size of
    the poles (straight up or down) the linearisation no longer holds and the footprint is approximate."""
    p, cov = in_camera(means, quats, scales, world_to_cam)  # [C, N, 3], [C, N, 3, 3]
    x, y, z = p.unbind(-1)
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]  # [C, 1]
    cx, cy = K[:, 0, 2, None], K[:, 1, 2, None]
    r2 = (x * x + y * y + z * z).clamp_min(1e-12)
    rho = torch.sqrt(x * x + z * z).clamp_min(1e-6 * r2.sqrt() + 1e-12)  # [C, N] distance from the vertical axis
    zero = torch.zeros_like(z)
    J = torch.stack([
        torch.stack([fx * z / rho**2, zero, -fx * x / rho**2], -1),
        torch.stack([-fy * x * y / (r2 * rho), fy * rho / r2, -fy * z * y / (r2 * rho)], -1),
    ], -2)  # [C, N, 2, 3]
    screen = _conics(J @ cov @ J.transpose(-1, -2), opacities, eps2d, antialiased)
    means2d = torch.stack([fx * torch.atan2(x, z) + cx, fy * torch.atan2(y, rho) + cy], -1)
    return _boxes(means2d, r2.sqrt(), *screen, width, height, near, far)


def _conics(cov2d: Tensor, opacities: Tensor, eps2d: float, antialiased: bool):
    """What every projection shares, first: screen covariances `[C, N, 2, 2]` to conics `[C, N, 3]`, opacities
    `[C, N]` (with the anti-aliasing compensation), and the blurred determinant and diagonal for the boxes."""
    a, b, c = cov2d[..., 0, 0], cov2d[..., 0, 1], cov2d[..., 1, 1]
    det_raw = a * c - b * b
    a, c = a + eps2d, c + eps2d
    det = a * c - b * b
    det_safe = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], -1)
    opac = opacities[None].expand_as(a)
    if antialiased:
        opac = opac * _Compensation.apply(torch.clamp_min(det_raw / det_safe, 0.0))
    return conics, opac, det, a, c


def _boxes(means2d: Tensor, depths: Tensor, conics: Tensor, opac: Tensor, det: Tensor, a: Tensor, c: Tensor,
           width: int, height: int, near: float, far: float) -> Projected:
    """And then: the bounding boxes of the Gaussians that are drawn (centres `[C, N, 2]`, depths `[C, N]`)."""
    with torch.no_grad():  # the bounding box is not differentiated, as in gsplat
        valid = (depths > near) & (depths < far) & (det > 0) & (opac >= ALPHA_MIN)
        extend = torch.clamp(torch.sqrt(2 * torch.log(torch.clamp_min(opac, ALPHA_MIN) / ALPHA_MIN)), max=EXTEND_MAX)
        radii = torch.ceil(extend[..., None] * torch.sqrt(torch.stack([a, c], -1).clamp_min(0)))
        u, v, ru, rv = means2d[..., 0], means2d[..., 1], radii[..., 0], radii[..., 1]
        on_screen = (u + ru > 0) & (u - ru < width) & (v + rv > 0) & (v - rv < height)
        valid &= on_screen & (radii > 0).any(-1)
        radii = torch.where(valid[..., None], radii, torch.zeros_like(radii)).to(torch.int32)
    return Projected(means2d, conics, depths, opac, radii)


def wrapped(proj: Projected, turn: Tensor, width: int) -> tuple[Projected, Tensor]:
    """For panoramas `turn` `[C, 1]` pixels per 360 degrees: in those whose `width` pixels span the whole turn, each
    Gaussian whose footprint crosses the left or right edge gets a copy one turn over, so that it is drawn on both
    sides of the seam. Returns the Gaussians and copies (`[C, N + D, ...]`; a copy is drawn only in the cameras
    where its Gaussian crosses) and, for each, the Gaussian it is `[N + D]`. A footprint wider than half a turn
    (a Gaussian over a pole) is not copied: it already spans the width."""
    u, ru = proj.means2d[..., 0], proj.radii[..., 0]  # [C, N]
    drawn = (proj.radii > 0).all(-1) & (2 * ru < turn) & (turn <= width + 0.5)
    left, right = drawn & (u - ru < 0), drawn & (u + ru > width)
    crossing = (left | right).any(0).nonzero()[:, 0]  # [D]
    shift = torch.where(left[:, crossing], turn, -turn)  # [C, D] pixels: to the other side
    copy = proj.means2d[:, crossing] + torch.stack([shift, torch.zeros_like(shift)], -1)
    radii = proj.radii[:, crossing] * (left | right)[:, crossing, None]  # [C, D, 2] drawn where it crosses
    source = torch.cat([torch.arange(proj.means2d.shape[1], device=crossing.device), crossing])
    return Projected(torch.cat([proj.means2d, copy], 1), proj.conics[:, source], proj.depths[:, source],
                     proj.opacities[:, source], torch.cat([proj.radii, radii], 1)), source


def may_be_seen(
    means: Tensor,  # [N, 3]
    max_scales: Tensor,  # [N] each Gaussian's largest standard deviation (activated)
    world_to_cam: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    near: float = 0.01,
    eps2d: float = 0.3,
) -> Tensor:
    """`[C, N]` False only for Gaussians that `project` would give no pixel: behind the near plane, or with a
    bounding box off the image by a bound that never undercuts project's (the Jacobian's norm at the unclamped
    centre times the largest scale, plus eps2d, times EXTEND_MAX). Costs one transform of the centres, so a
    render of a small part of a large world (a cube face of a panorama) can skip the rest before projecting."""
    R, t = world_to_cam[:, None, :3, :3], world_to_cam[:, None, :3, 3]  # [C, 1, 3, 3], [C, 1, 3]
    p = (R @ means[None, :, :, None])[..., 0] + t  # [C, N, 3]
    x, y, z = p.unbind(-1)
    z_safe = z.clamp_min(near)
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]  # [C, 1]
    tan2 = 1 + (x / z_safe) ** 2 + (y / z_safe) ** 2
    reach = EXTEND_MAX * (torch.maximum(fx, fy) ** 2 / z_safe**2 * tan2 * max_scales[None] ** 2 + eps2d).sqrt() + 1
    u = fx * x / z_safe + K[:, 0, 2, None]
    v = fy * y / z_safe + K[:, 1, 2, None]
    return (z > near) & (u + reach > 0) & (u - reach < width) & (v + reach > 0) & (v - reach < height)
