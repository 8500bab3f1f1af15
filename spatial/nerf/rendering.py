"""Volume rendering along rays, and the two sample-placement losses of mip-NeRF 360 / nerfacto.

Samples along a ray are intervals given by their edges `[R, S + 1]` (distances along a unit
direction), each with a constant density: the standard piecewise-constant quadrature, which is
exact for densities that really are constant per interval.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-7


def render_weights(sigma: Tensor, edges: Tensor) -> Tensor:
    """Weights `[R, S]` (probability that the ray ends in each interval) of densities `sigma [R, S]`
    on intervals `edges [R, S + 1]`: `w_i = (1 - exp(-sigma_i d_i)) * exp(-sum_{j<i} sigma_j d_j)`."""
    tau = sigma * (edges[:, 1:] - edges[:, :-1])  # [R, S] optical depth of each interval
    # depth in front of interval i, summed without it: `cumsum(tau) - tau` cancels catastrophically when tau_i is
    # huge (the last interval of an unbounded ray runs to the far plane, tau ~1e9, where float32 steps by 128), which
    # made that interval's weight 1 whatever lay in front of it, and long NeRF runs blew up (see the test)
    before = torch.cat([torch.zeros_like(tau[:, :1]), torch.cumsum(tau[:, :-1], dim=-1)], -1)
    return (1 - torch.exp(-tau)) * torch.exp(-before)


def composite(weights: Tensor, values: Tensor) -> Tensor:
    """Sum over samples of `weights [R, S]` times `values [R, S, C]` -> `[R, C]`."""
    return (weights[..., None] * values).sum(-2)


def interval_outer(edges: Tensor, env_edges: Tensor, env_weights: Tensor) -> Tensor:
    """For each interval of `edges [R, S + 1]`, the total weight `[R, S]` of the envelope intervals
    (`env_edges [R, P + 1]`, `env_weights [R, P]`) that overlap it: an upper bound on its weight."""
    cumulative = torch.cat([torch.zeros_like(env_weights[:, :1]), torch.cumsum(env_weights, -1)], -1)  # [R, P+1]
    P = env_weights.shape[-1]
    lo = (torch.searchsorted(env_edges[:, :-1].contiguous(), edges[:, :-1].contiguous(), right=True) - 1)
    hi = torch.searchsorted(env_edges[:, 1:].contiguous(), edges[:, 1:].contiguous(), right=False)
    lo, hi = lo.clamp(0, P - 1), hi.clamp(0, P - 1)
    return torch.take_along_dim(cumulative[:, 1:], hi, -1) - torch.take_along_dim(cumulative[:, :-1], lo, -1)


def interlevel_loss(edges: Tensor, weights: Tensor, proposals: list[tuple[Tensor, Tensor]]) -> Tensor:
    """mip-NeRF 360's proposal loss: each proposal's weights must bound the final weights from above.

    `edges [R, S + 1]` and `weights [R, S]` are the final field's (no gradient flows into them);
    `proposals` holds each proposal level's (edges, weights), in normalised spacing like `edges`.
    """
    edges, weights = edges.detach(), weights.detach()
    loss = weights.new_zeros(())
    for p_edges, p_weights in proposals:
        bound = interval_outer(edges, p_edges.detach(), p_weights)
        loss = loss + (torch.clamp(weights - bound, min=0) ** 2 / (weights + EPS)).mean()
    return loss


def distortion_loss(edges: Tensor, weights: Tensor) -> Tensor:
    """mip-NeRF 360's distortion loss (closed form for piecewise-constant weights), on normalised
    spacing `edges [R, S + 1]`: pulls each ray's weight into as short a stretch as possible."""
    mid = (edges[:, 1:] + edges[:, :-1]) / 2
    width = edges[:, 1:] - edges[:, :-1]
    uni = (width * weights**2).sum(-1) / 3
    wm = weights * mid
    w_before = torch.cumsum(weights, -1)[:, :-1]
    wm_before = torch.cumsum(wm, -1)[:, :-1]
    bi = 2 * (wm[:, 1:] * w_before - weights[:, 1:] * wm_before).sum(-1)
    return (uni + bi).mean()
