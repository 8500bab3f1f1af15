"""Real spherical harmonics up to degree 3, with the constants and sign convention of 3DGS and gsplat."""

from __future__ import annotations

import torch
from torch import Tensor

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
      -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def num_sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def eval_sh(degree: int, coeffs: Tensor, dirs: Tensor) -> Tensor:
    """Colour `[..., 3]` from coefficients `[..., K, 3]` (K >= (degree+1)^2) along unit `dirs [..., 3]`."""
    out = C0 * coeffs[..., 0, :]
    if degree < 1:
        return out
    x, y, z = dirs[..., 0:1], dirs[..., 1:2], dirs[..., 2:3]
    out = out - C1 * y * coeffs[..., 1, :] + C1 * z * coeffs[..., 2, :] - C1 * x * coeffs[..., 3, :]
    if degree < 2:
        return out
    xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
    out = (out + C2[0] * xy * coeffs[..., 4, :] + C2[1] * yz * coeffs[..., 5, :]
           + C2[2] * (2 * zz - xx - yy) * coeffs[..., 6, :] + C2[3] * xz * coeffs[..., 7, :]
           + C2[4] * (xx - yy) * coeffs[..., 8, :])
    if degree < 3:
        return out
    return (out + C3[0] * y * (3 * xx - yy) * coeffs[..., 9, :] + C3[1] * xy * z * coeffs[..., 10, :]
            + C3[2] * y * (4 * zz - xx - yy) * coeffs[..., 11, :]
            + C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * coeffs[..., 12, :]
            + C3[4] * x * (4 * zz - xx - yy) * coeffs[..., 13, :] + C3[5] * z * (xx - yy) * coeffs[..., 14, :]
            + C3[6] * x * (xx - 3 * yy) * coeffs[..., 15, :])


def rgb_to_sh(rgb: Tensor) -> Tensor:
    """The degree-0 coefficient that renders as `rgb` (inverse of `C0 * c + 0.5`)."""
    return (rgb - 0.5) / C0


def sh_to_rgb(sh0: Tensor) -> Tensor:
    return sh0 * C0 + 0.5


def view_colors(colors: Tensor, means: Tensor, cam_to_world: Tensor, sh_degree: int | None) -> Tensor:
    """Per-camera colours `[C, N, 3]` from SH `[N, K, 3]` (or plain RGB `[N, 3]` when `sh_degree` is None).

    As in gsplat, 0.5 is added to the SH result and negative values are clamped to zero.
    """
    C = cam_to_world.shape[0]
    if sh_degree is None:
        return colors.expand(C, -1, -1)
    dirs = means[None] - cam_to_world[:, None, :3, 3]  # [C, N, 3]
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    # degree 0 does not depend on the direction, so eval_sh gives [1, N, 3]: one row serves every camera
    return torch.clamp_min(eval_sh(sh_degree, colors[None], dirs) + 0.5, 0.0).expand(C, -1, -1)


def sh_basis(dirs: Tensor, degree: int) -> Tensor:
    """Values `[D, K]` of the K = (degree+1)^2 real SH basis functions at unit `dirs [D, 3]`."""
    K = (degree + 1) ** 2
    eye = torch.eye(K, dtype=dirs.dtype, device=dirs.device)  # channel k holds basis function k alone
    return eval_sh(degree, eye.expand(dirs.shape[0], K, K), dirs)
