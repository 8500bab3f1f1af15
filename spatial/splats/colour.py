"""Colour grading of splats: brightness, contrast, saturation, temperature and tint, and an opacity scale.

    adjustment = ColourAdjustment(brightness=0.1, saturation=-0.3)
    params = adjust_colour(params, adjustment, mask)   # a new dict; `mask [N]` bool, None for all

Every colour control is an affine map of RGB, `c -> A c + b`, so together they are one (`colour_map`). A splat's
colour in a direction d is `0.5 + C0 sh0 + sum_k Y_k(d) shN_k` (per channel), so mapping the degree-0
coefficient to `(A (C0 sh0 + 0.5) + b - 0.5) / C0` and every higher one to `A shN_k` maps the colour seen from
every direction by exactly the same `A c + b`: view-dependent colour is graded with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from spatial.render.sh import C0

LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 weights: saturation turns about this grey
WARM = 0.2  # temperature 1 scales red up and blue down by this much; tint 1 scales green down by it


@dataclass(frozen=True)
class ColourAdjustment:
    brightness: float = 0.0  # added to every channel (0-1 colour units)
    contrast: float = 0.0  # colours pushed from mid grey by (1 + contrast); -1 flattens to grey
    saturation: float = 0.0  # colours pushed from their grey by (1 + saturation); -1 is black and white
    temperature: float = 0.0  # > 0 warmer (red up, blue down), < 0 cooler
    tint: float = 0.0  # > 0 towards magenta (green down), < 0 towards green
    opacity: float = 1.0  # opacities multiplied by this (kept in 0-1)

    @property
    def is_identity(self) -> bool:
        return self == ColourAdjustment()


def colour_map(adjustment: ColourAdjustment) -> tuple[Tensor, Tensor]:
    """`A [3, 3]` and `b [3]` (float64, CPU) of the affine RGB map: white balance, then saturation, contrast
    and brightness, in that order."""
    a = adjustment
    balance = torch.diag(torch.tensor([1 + WARM * a.temperature, 1 - WARM * a.tint, 1 - WARM * a.temperature],
                                      dtype=torch.float64, device="cpu"))
    luma = torch.tensor(LUMA, dtype=torch.float64, device="cpu")
    grey = torch.ones(3, 1, dtype=torch.float64, device="cpu") * luma[None]  # [3, 3]: c -> (luma . c) everywhere
    saturate = grey + (1 + a.saturation) * (torch.eye(3, dtype=torch.float64, device="cpu") - grey)
    A = (1 + a.contrast) * saturate @ balance
    b = torch.full((3,), 0.5 * (1 - (1 + a.contrast)) + a.brightness, dtype=torch.float64, device="cpu")
    return A, b


def adjust_colour(params: dict[str, Tensor], adjustment: ColourAdjustment,
                  mask: Tensor | None = None) -> dict[str, Tensor]:
    """Raw parameters with the colours (every SH band) and opacities of the Gaussians in `mask [N]` graded by
    `adjustment`; the others, and the input, untouched."""
    A, b = colour_map(adjustment)
    sh0, shN, opacities = params["sh0"].detach(), params["shN"].detach(), params["opacities"].detach()
    A, b = A.to(sh0), b.to(sh0)
    index = slice(None) if mask is None else mask
    out = dict(params)
    new0 = sh0.clone()
    rgb = C0 * sh0[index, 0] + 0.5  # [M, 3]
    new0[index, 0] = ((rgb @ A.T + b) - 0.5) / C0
    out["sh0"] = new0
    if shN.shape[1]:
        newN = shN.clone()
        newN[index] = shN[index] @ A.T  # [M, K-1, 3]
        out["shN"] = newN
    if adjustment.opacity != 1.0:
        alpha = (torch.sigmoid(opacities[index]) * adjustment.opacity).clamp(1e-6, 1 - 1e-6)
        newo = opacities.clone()
        newo[index] = torch.logit(alpha)
        out["opacities"] = newo
    return out
