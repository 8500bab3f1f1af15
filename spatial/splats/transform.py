"""Moving, turning and scaling whole splat models, and putting several into one world.

A similarity `T [4, 4]` (x -> s R x + t) moves centres, turns each Gaussian's rotation by R, adds
log(s) to its log-scales and turns its spherical harmonics with R, so the view-dependent colour
follows the object: the result renders like the original seen through the inverse transform.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spatial.render.sh import sh_basis
from spatial.splats.model import sh_degree_of
from spatial.transforms import quat_to_rotmat, rotmat_to_quat


def split_similarity(T: Tensor) -> tuple[Tensor, Tensor, float]:
    """(R [3, 3], t [3], s) of a similarity; refuses reflections and shears."""
    A = T[:3, :3].double()
    s = float(torch.linalg.det(A)) ** (1 / 3) if float(torch.linalg.det(A)) > 0 else -1.0
    if s <= 0:
        raise ValueError("the transform mirrors or collapses space; only rotation, translation and uniform "
                         "scale can be applied to splats")
    R = A / s
    if not torch.allclose(R @ R.T, torch.eye(3, dtype=R.dtype), atol=1e-4):
        raise ValueError("the transform shears or scales unevenly; splats take rotation, translation and "
                         "one uniform scale")
    return R, T[:3, 3].double(), s


def sh_rotation(R: Tensor, degree: int) -> Tensor:
    """Matrix `[K-1, K-1]` taking higher-band SH coefficients to those of the same function turned by R.

    Each band l mixes only within itself; its block solves, in the least-squares sense over many
    directions d, sum_k c'_k Y_k(d) = sum_k c_k Y_k(R^T d). (Exact: the fit has zero residual.)
    """
    K = (degree + 1) ** 2
    M = torch.zeros(K - 1, K - 1, dtype=torch.float64)
    if degree == 0:
        return M
    g = torch.Generator().manual_seed(0)
    dirs = torch.nn.functional.normalize(torch.randn(256, 3, generator=g, dtype=torch.float64), dim=-1)
    basis = sh_basis(dirs, degree)  # [D, K]
    turned = sh_basis(dirs @ R.double(), degree)  # rows are Y(R^T d)
    for l in range(1, degree + 1):
        band = slice(l * l, (l + 1) * (l + 1))
        block = torch.linalg.lstsq(basis[:, band], turned[:, band]).solution  # [2l+1, 2l+1]
        M[l * l - 1:(l + 1) ** 2 - 1, l * l - 1:(l + 1) ** 2 - 1] = block
    return M


def transform_splats(params: dict[str, Tensor], T: Tensor) -> dict[str, Tensor]:
    """Raw parameters moved by the similarity `T [4, 4]` (see the module docstring)."""
    R, t, s = split_similarity(T)
    p = {k: v.detach() for k, v in params.items()}
    dtype = p["means"].dtype
    out = dict(p)
    out["means"] = (s * p["means"].double() @ R.T + t).to(dtype)
    rotated = R @ quat_to_rotmat(p["quats"].double())  # [N, 3, 3]
    norms = p["quats"].norm(dim=-1, keepdim=True)
    out["quats"] = (rotmat_to_quat(rotated) * norms).to(dtype)
    out["scales"] = p["scales"] + math.log(s)
    degree = sh_degree_of(p)
    if degree > 0:
        M = sh_rotation(R, degree).to(dtype)
        out["shN"] = torch.einsum("ij,njc->nic", M, p["shN"])
    return out


def merge_splats(models: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """One model holding all Gaussians of `models`; SH bands are padded with zeros to the highest degree."""
    if not models:
        raise ValueError("nothing to merge")
    bands = max(m["shN"].shape[1] for m in models)
    padded = []
    for m in models:
        shN = m["shN"].detach()
        if shN.shape[1] < bands:
            shN = torch.cat([shN, shN.new_zeros(shN.shape[0], bands - shN.shape[1], 3)], 1)
        padded.append({**{k: v.detach() for k, v in m.items()}, "shN": shN})
    return {k: torch.cat([m[k] for m in padded]) for k in padded[0]}
