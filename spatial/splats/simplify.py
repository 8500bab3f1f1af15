"""Fewer Gaussians that render nearly the same: `--max-splats` on every splat export.

The `count` Gaussians of most importance (their blending weight over the training views, `select.importance`)
are kept, and each dropped one is merged into its nearest kept neighbour by moment matching: the merged
Gaussian's mean, covariance and colour (every SH band) are the averages weighted by opacity x area, and its
opacity keeps their summed opacity x area. A dropped Gaussian farther from every kept one than `reach` times
that one's largest axis is dropped without merging, so no merge spans empty space.

On the built-in scene (scripts/results/formats.txt) merging gains 2.5 dB over dropping alone at half the
Gaussians and 5 dB at a quarter; splat-transform's `--decimate`, which merges pair by pair by a cost of its
own, keeps more still.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spatial.splats import select
from spatial.transforms import quat_to_rotmat, rotmat_to_quat


def simplify(params: dict[str, Tensor], count: int, cameras=None, reach: float = 8.0) -> dict[str, Tensor]:
    """At most `count` Gaussians: the most important kept, the rest merged into them (see the module)."""
    N = params["means"].shape[0]
    if count >= N:
        return {k: v.detach().clone() for k, v in params.items()}
    keep = select.most_important(params, count, cameras)
    return merge_into(params, keep, reach)


def merge_into(params: dict[str, Tensor], keep: Tensor, reach: float = 8.0) -> dict[str, Tensor]:
    """The Gaussians where `keep [N]` is true, each with the dropped ones nearest to it merged in."""
    from scipy.spatial import cKDTree

    device, dtype = params["means"].device, params["means"].dtype
    p = {k: v.detach().cpu().double() for k, v in params.items()}
    kept, dropped = keep.cpu().nonzero()[:, 0], (~keep.cpu()).nonzero()[:, 0]
    R = quat_to_rotmat(torch.nn.functional.normalize(p["quats"], dim=-1))  # [N, 3, 3]
    s = torch.exp(p["scales"])  # [N, 3]
    cov = (R * (s**2)[:, None, :]) @ R.transpose(1, 2)  # [N, 3, 3]
    alpha = torch.sigmoid(p["opacities"])
    two = s.sort(-1).values[:, 1:]
    area = two[:, 0] * two[:, 1]  # [N]: the two largest axes
    distance, nearest = cKDTree(p["means"][kept].numpy()).query(p["means"][dropped].numpy())
    nearest = torch.from_numpy(nearest).long()
    close = torch.from_numpy(distance) < reach * s[kept[nearest]].max(-1).values
    K = len(kept)
    slot = torch.cat([torch.arange(K, device="cpu"), nearest[close]])  # [M]: the kept Gaussian each source goes into
    source = torch.cat([kept, dropped[close]])  # [M]
    w = (alpha * area)[source]  # [M]

    def average(x: Tensor) -> Tensor:  # [M, ...] -> [K, ...], weighted by w
        shape = (-1,) + (1,) * (x.dim() - 1)
        total = torch.zeros((K, *x.shape[1:]), dtype=x.dtype, device="cpu").index_add_(0, slot, w.view(shape) * x)
        return total / torch.zeros(K, dtype=x.dtype, device="cpu").index_add_(0, slot, w).view(shape)

    mean = average(p["means"][source])
    offset = p["means"][source] - mean[slot]
    covariance = average(cov[source] + offset[:, :, None] * offset[:, None, :])
    variance, axes = torch.linalg.eigh(covariance)  # ascending; columns are the axes
    axes = torch.where(torch.linalg.det(axes)[:, None, None] < 0, axes * torch.tensor([-1.0, 1.0, 1.0], device="cpu",
                                                                                     dtype=axes.dtype), axes)
    scales = variance.clamp(min=1e-20).sqrt()
    mass = torch.zeros(K, dtype=torch.float64, device="cpu").index_add_(0, slot, alpha[source] * area[source])
    opacity = (mass / (scales[:, 1] * scales[:, 2])).clamp(1e-4, 0.99)
    merged = {"means": mean, "quats": rotmat_to_quat(axes), "scales": scales.log(),
              "opacities": torch.log(opacity / (1 - opacity)), "sh0": average(p["sh0"][source]),
              "shN": average(p["shN"][source])}
    return {k: v.to(device=device, dtype=dtype) for k, v in merged.items()}
