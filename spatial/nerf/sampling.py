"""Where along each ray the fields are evaluated: near/far from the scene's box, uniform samples in a
normalised spacing, and histogram (PDF) resampling from a coarser level's weights (nerfacto).

Samples are kept as interval edges in the normalised spacing `s` in [0, 1]; `Spacing` converts
between `s` and the distance `t` along the ray. Bounded scenes space samples linearly between the
ray's entry and exit of the box; unbounded ones linearly up to the scene radius and then linearly in
disparity (nerfacto's piecewise spacing), so far-away space gets few samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def ray_box(origins: Tensor, dirs: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Entry and exit distances `[R]` of rays `origins, dirs [R, 3]` through the box `lo, hi [3]`;
    exit <= entry for rays that miss it."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0, t1 = (lo.to(origins) - origins) * inv, (hi.to(origins) - origins) * inv
    return torch.minimum(t0, t1).amax(-1), torch.maximum(t0, t1).amin(-1)


@dataclass
class Spacing:
    """Maps the normalised spacing `s [R, K]` to distances `t` for rays with `near, far [R]`."""

    near: Tensor  # [R]
    far: Tensor  # [R]
    radius: float | None = None  # None: linear (bounded); else piecewise linear/disparity beyond it

    def _g(self, t: Tensor) -> Tensor:  # distance -> the monotone coordinate sampled uniformly
        x = t / self.radius
        return torch.where(x < 1, x / 2, 1 - 1 / (2 * x.clamp(min=1e-6)))

    def _g_inv(self, y: Tensor) -> Tensor:
        return self.radius * torch.where(y < 0.5, 2 * y, 1 / (2 * (1 - y).clamp(min=1e-6)))

    def to_t(self, s: Tensor) -> Tensor:
        near, far = self.near[:, None], self.far[:, None]
        if self.radius is None:
            return near + s * (far - near)
        g0, g1 = self._g(near), self._g(far)
        return self._g_inv(g0 + s * (g1 - g0))

    def to_s(self, t: Tensor) -> Tensor:
        """Distances `t [R, K]` to the normalised spacing (the inverse of `to_t`), clamped to [0, 1]."""
        near, far = self.near[:, None], self.far[:, None]
        if self.radius is None:
            return ((t - near) / (far - near)).clamp(0, 1)
        g0, g1 = self._g(near), self._g(far)
        return ((self._g(t) - g0) / (g1 - g0)).clamp(0, 1)


def uniform_edges(rays: int, samples: int, jitter: bool, device, generator: torch.Generator | None = None) -> Tensor:
    """`samples` equal intervals of [0, 1] per ray, `[R, samples + 1]`, shifted by a random fraction
    of an interval in training (stratified sampling). `generator` lives on `device`."""
    edges = torch.linspace(0, 1, samples + 1, device=device).expand(rays, -1)
    if jitter:
        shift = (torch.rand(rays, 1, generator=generator, device=device) - 0.5) / samples
        edges = (edges + shift).clamp(0, 1)
    return edges.contiguous()


def pdf_edges(edges: Tensor, weights: Tensor, samples: int, jitter: bool,
              generator: torch.Generator | None = None, padding: float = 0.01) -> Tensor:
    """Resample `samples` intervals `[R, samples + 1]` from the histogram of `weights [R, S]` on
    `edges [R, S + 1]`: dense where the weight is, sparse elsewhere (inverse-CDF sampling)."""
    R, S = weights.shape
    w = weights.detach() + padding / S  # padding: never starve empty-looking space completely
    cdf = torch.cumsum(w / w.sum(-1, keepdim=True), -1)
    cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf.clamp(max=1)], -1)  # [R, S + 1]
    u = torch.linspace(0, 1, samples + 1, device=edges.device).expand(R, -1)
    if jitter:
        u = u + (torch.rand(R, samples + 1, generator=generator, device=edges.device) - 0.5) / (samples + 1)
    u = u.clamp(0, 1).contiguous()
    above = torch.searchsorted(cdf.contiguous(), u, right=True).clamp(1, S)
    below = above - 1
    c0, c1 = torch.take_along_dim(cdf, below, -1), torch.take_along_dim(cdf, above, -1)
    e0, e1 = torch.take_along_dim(edges, below, -1), torch.take_along_dim(edges, above, -1)
    frac = ((u - c0) / (c1 - c0).clamp(min=1e-9)).clamp(0, 1)
    new = torch.sort(e0 + frac * (e1 - e0), -1).values
    new[:, 0], new[:, -1] = edges[:, 0], edges[:, -1]  # keep the ray's full range covered
    return new.detach()
