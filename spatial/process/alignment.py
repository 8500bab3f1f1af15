"""Comparing reconstructed cameras with ground truth after a similarity alignment (Umeyama 1991)."""

from __future__ import annotations

import torch
from torch import Tensor


def umeyama(source: Tensor, target: Tensor) -> tuple[float, Tensor, Tensor]:
    """Scale s, rotation R `[3, 3]` and translation t `[3]` minimising |s R source + t - target|^2."""
    source, target = source.double(), target.double()
    mu_s, mu_t = source.mean(0), target.mean(0)
    xs, xt = source - mu_s, target - mu_t
    cov = xt.T @ xs / len(source)
    U, D, Vh = torch.linalg.svd(cov)
    S = torch.eye(3, dtype=torch.float64)
    if torch.det(U) * torch.det(Vh) < 0:
        S[2, 2] = -1
    R = U @ S @ Vh
    var = (xs**2).sum() / len(source)
    scale = float((D * S.diagonal()).sum() / var)
    return scale, R, mu_t - scale * R @ mu_s


def pose_errors(cam_to_world: Tensor, truth: Tensor) -> dict[str, float]:
    """Centre and rotation errors of poses `[C, 4, 4]` against true poses `[C, 4, 4]` after a similarity
    alignment. Centre errors are relative to the true centres' extent (max distance between two cameras)."""
    s, R, t = umeyama(cam_to_world[:, :3, 3], truth[:, :3, 3])
    centers = (s * (R @ cam_to_world[:, :3, 3].double().T)).T + t
    extent = torch.cdist(truth[:, :3, 3].double(), truth[:, :3, 3].double()).max()
    center_err = torch.linalg.norm(centers - truth[:, :3, 3].double(), dim=-1) / extent
    # The rotation part of the gauge comes from the rotations themselves (their chordal mean), not
    # from the centres, which may be nearly coplanar (a forward-facing capture) and leave it loose.
    R_est, R_true = cam_to_world[:, :3, :3].double(), truth[:, :3, :3].double()
    U, _, Vh = torch.linalg.svd((R_true @ R_est.transpose(-1, -2)).sum(0))
    D = torch.diag(torch.tensor([1.0, 1.0, float(torch.det(U @ Vh))], dtype=torch.float64))
    rel = (U @ D @ Vh @ R_est).transpose(-1, -2) @ R_true
    # atan2 of sine and cosine: exact near zero, where acos of the cosine alone loses precision.
    cos = (rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    skew = rel - rel.transpose(-1, -2)
    sin = torch.linalg.norm(torch.stack([skew[:, 2, 1], skew[:, 0, 2], skew[:, 1, 0]], -1), dim=-1) / 2
    angles = torch.rad2deg(torch.atan2(sin, cos))
    return {"center_error_max": float(center_err.max()), "center_error_mean": float(center_err.mean()),
            "rotation_error_max_deg": float(angles.max()), "rotation_error_mean_deg": float(angles.mean()),
            "scale": s}
