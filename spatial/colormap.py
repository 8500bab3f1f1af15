"""Colour maps for depth and other scalar images."""

from __future__ import annotations

import torch
from torch import Tensor

# Google's Turbo colour map as a polynomial fit (Mikhailov, 2019): smooth, perceptually ordered.
_TURBO = torch.tensor([
    [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
    [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
    [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
], dtype=torch.float64)


def turbo(x: Tensor) -> Tensor:
    """Values `[...]` in 0-1 to RGB `[..., 3]` in 0-1."""
    x = x.clamp(0, 1).double()
    powers = torch.stack([x**i for i in range(6)], -1)  # [..., 6]
    return (powers @ _TURBO.to(x.device).T).clamp(0, 1).to(torch.float32)


def colorize_depth(depth: Tensor, alpha: Tensor, near: float | None = None, far: float | None = None) -> Tensor:
    """Depth `[H, W, 1]` to RGB `[H, W, 3]`: near is blue, far is red, empty pixels (alpha < 0.5) black.

    Without `near`/`far` the range is the 1st-99th percentile of the covered pixels of this image;
    pass them to keep colours steady along a video.
    """
    d, covered = depth[..., 0], alpha[..., 0] > 0.5
    values = d[covered]
    if values.numel() == 0:
        return torch.zeros(*d.shape, 3, device=d.device)
    near = float(torch.quantile(values.float(), 0.01)) if near is None else near
    far = float(torch.quantile(values.float(), 0.99)) if far is None else far
    rgb = turbo((d - near) / max(far - near, 1e-8))
    return rgb * covered[..., None]
