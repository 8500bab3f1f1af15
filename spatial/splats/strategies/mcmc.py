"""3D Gaussian Splatting as Markov Chain Monte Carlo (Kheradmand et al. 2024), after gsplat's MCMCStrategy.

Dead Gaussians (nearly transparent) are relocated onto live ones chosen in proportion to opacity,
with opacity and scale adjusted so the rendered result is unchanged; new Gaussians are added the
same way up to `cap_max`; every step, position noise explores where Gaussians are transparent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from spatial.render import RenderOptions
from spatial.splats import ops
from spatial.splats.strategies.base import StepInfo
from spatial.transforms import quat_to_rotmat

N_MAX = 51  # most copies a Gaussian may be split into in one relocation


@dataclass
class MCMCStrategy:
    cap_max: int = 1_000_000
    """Largest number of Gaussians."""
    noise_lr: float = 5e5
    """Scale of the position noise (times the position learning rate)."""
    refine_start: int = 500
    """First step of relocation and growth."""
    refine_stop: int = 25_000
    """Relocation and growth stop after this step."""
    refine_every: int = 100
    """Steps between relocations."""
    min_opacity: float = 0.005
    """Gaussians less opaque than this are dead and get relocated."""
    opacity_reg: float = 0.01
    """Weight of the mean-opacity regulariser."""
    scale_reg: float = 0.01
    """Weight of the mean-scale regulariser."""

    def init_state(self, params) -> dict:
        return {}

    def render_options(self, options: RenderOptions) -> RenderOptions:
        return options

    def step_pre_backward(self, params, optimizers, state: dict, info: StepInfo) -> None:
        pass

    def regularization(self, params) -> Tensor:
        return (self.opacity_reg * torch.sigmoid(params["opacities"]).mean()
                + self.scale_reg * torch.exp(params["scales"]).mean())

    def step_post_backward(self, params, optimizers, state: dict, info: StepInfo) -> None:
        step = info.step
        if self.refine_start < step < self.refine_stop and step % self.refine_every == 0:
            self._relocate(params, optimizers, info.generator)
            self._add(params, optimizers, info.generator)
        self._inject_noise(params, info)

    @torch.no_grad()
    def _relocate(self, params, optimizers, generator: torch.Generator) -> None:
        opacity = torch.sigmoid(params["opacities"].detach())
        dead = torch.nonzero(opacity <= self.min_opacity)[:, 0]
        alive = torch.nonzero(opacity > self.min_opacity)[:, 0]
        if len(dead) == 0 or len(alive) == 0:
            return
        chosen = alive[torch.multinomial(opacity[alive], len(dead), replacement=True, generator=generator)]
        self._copy_onto(params, optimizers, chosen, dead)

    @torch.no_grad()
    def _add(self, params, optimizers, generator: torch.Generator) -> None:
        N = params["means"].shape[0]
        extra = min(self.cap_max, int(1.05 * N)) - N
        if extra <= 0:
            return
        opacity = torch.sigmoid(params["opacities"].detach())
        chosen = torch.multinomial(opacity, extra, replacement=True, generator=generator)
        ops.append(params, optimizers, {k: v.detach()[chosen] for k, v in params.items()})
        self._copy_onto(params, optimizers, chosen, torch.arange(N, N + extra, device=chosen.device))

    def _copy_onto(self, params, optimizers, sources: Tensor, targets: Tensor) -> None:
        """Split each source into (1 + times chosen) equal parts; the targets become copies of it."""
        counts = torch.bincount(sources, minlength=params["means"].shape[0])[sources] + 1
        opacity = torch.sigmoid(params["opacities"].detach()[sources])
        scales = torch.exp(params["scales"].detach()[sources])
        new_opacity, new_scales = relocation(opacity, scales, counts)
        new_opacity = new_opacity.clamp(self.min_opacity, 1 - 1e-6)
        logit = torch.log(new_opacity / (1 - new_opacity))
        values = {name: p.detach()[sources] for name, p in params.items()}
        values["opacities"], values["scales"] = logit, torch.log(new_scales)
        ops.set_rows(params, optimizers, torch.cat([sources, targets]),
                     {name: torch.cat([v, v]) for name, v in values.items()})

    def _inject_noise(self, params, info: StepInfo) -> None:
        with torch.no_grad():
            opacity = torch.sigmoid(params["opacities"])
            scales = torch.exp(params["scales"])
            R = quat_to_rotmat(params["quats"])
            cov = (R * scales[:, None, :] ** 2) @ R.transpose(-1, -2)  # [N, 3, 3]
            # gsplat's op_sigmoid(1 - opacity): ~1 below opacity 0.005 (dead, free to explore), ~0 from 0.05 up
            gate = torch.sigmoid(-100 * (opacity - 0.005))
            noise = torch.randn(params["means"].shape, generator=info.generator, device=params["means"].device)
            noise = noise * (gate * self.noise_lr * info.means_lr)[:, None]
            params["means"].add_((cov @ noise[..., None])[..., 0])


def relocation(opacity: Tensor, scales: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
    """Opacity and scales of each of `counts` copies that together render like the original (eq. 9)."""
    n = counts.clamp(1, N_MAX).to(opacity.dtype)
    new_opacity = 1 - torch.pow(1 - opacity, 1 / n)
    denom = torch.zeros_like(opacity)
    for i in range(1, int(n.max().item()) + 1):
        term = torch.zeros_like(opacity)
        for k in range(i):
            term = term + math.comb(i - 1, k) * (-1) ** k / math.sqrt(k + 1) * new_opacity ** (k + 1)
        denom = denom + torch.where(i <= n, term, torch.zeros_like(term))
    coeff = opacity / denom.clamp_min(1e-12)
    return new_opacity, scales * coeff[:, None]
