"""Adaptive density control of the original 3DGS paper: clone, split, prune, opacity reset.

Thresholds and schedule follow gsplat's `DefaultStrategy`; steps are 0-based. With `absgrad`, growth reads the
summed absolute per-pixel gradients of AbsGS (Ye et al. 2024; gsplat's `absgrad`): a large Gaussian over fine
detail, whose pixels pull its centre in opposite directions, then splits instead of staying blurred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from spatial.render import RenderOptions
from spatial.splats import ops
from spatial.splats.strategies.base import StepInfo
from spatial.transforms import quat_to_rotmat


@dataclass
class DefaultStrategy:
    prune_opacity: float = 0.005
    """Gaussians less opaque than this are removed."""
    grow_grad2d: float = 0.0002
    """Average screen-space gradient (in NDC units) above which a Gaussian is cloned or split (with `absgrad`,
    of the absolute gradient, which is larger: gsplat uses 0.0008 there)."""
    absgrad: bool = False
    """Grow by the sum of each pixel's absolute gradient (AbsGS) instead of the gradient itself."""
    grow_scale3d: float = 0.01
    """Gaussians smaller than this (x scene scale) are cloned when they grow; larger ones are split."""
    prune_scale3d: float = 0.1
    """After the first opacity reset, Gaussians larger than this (x scene scale) are removed."""
    refine_start: int = 500
    """First step of densification."""
    refine_stop: int = 15_000
    """Densification stops after this step."""
    refine_every: int = 100
    """Steps between densifications."""
    reset_every: int = 3000
    """Steps between opacity resets (0 disables them)."""

    def init_state(self, params) -> dict:
        """Screen-space gradient norms and visibility counts `[N]`, beside the parameters (same device)."""
        zeros = params["means"].new_zeros(params["means"].shape[0])
        return {"grad2d": zeros, "count": zeros.clone()}

    def render_options(self, options: RenderOptions) -> RenderOptions:
        return replace(options, absgrad=True) if self.absgrad else options

    def step_pre_backward(self, params, optimizers, state: dict, info: StepInfo) -> None:
        for view in info.views:
            view.render.means2d.retain_grad()

    def regularization(self, params) -> Tensor:
        return params["means"].new_zeros(())

    def step_post_backward(self, params, optimizers, state: dict, info: StepInfo) -> None:
        step = info.step
        if step >= self.refine_stop:
            return
        self._accumulate(state, info)
        if step > self.refine_start and step % self.refine_every == 0:
            self._grow(params, optimizers, state, info)
            self._prune(params, optimizers, state, info)
            state.update(self.init_state(params))
        if self.reset_every and step % self.reset_every == 0 and step > 0:
            limit = math.log(2 * self.prune_opacity / (1 - 2 * self.prune_opacity))
            ops.edit(params, optimizers,
                     lambda n, p: p.clamp_max(limit) if n == "opacities" else p,
                     lambda n, m: torch.zeros_like(m) if n == "opacities" else m)

    def _accumulate(self, state: dict, info: StepInfo) -> None:
        """Each view's screen-space gradient norms and visibility, summed over every training process. A view's
        gradient is its own loss's (train_step runs each view's backward pass on its own; gsplat, which takes
        the batch's mean, scales its gradients back by the batch size to the same numbers)."""
        norms, counts = [], []
        for view in info.views:
            m2d = view.render.means2d
            grad = getattr(m2d, "absgrad", None) if self.absgrad else m2d.grad  # [C, N, 2] pixels
            if grad is None:
                continue
            grad = grad.detach()
            grad = torch.stack([grad[..., 0] * (view.width / 2), grad[..., 1] * (view.height / 2)], -1)  # NDC units
            visible = view.render.visible  # [C, N]
            norms.append((torch.linalg.norm(grad, dim=-1) * visible).sum(0))
            counts.append(visible.sum(0).to(state["count"].dtype))
        if not norms:  # nothing drew this step; every process still takes part in the sum
            norms, counts = [torch.zeros_like(state["grad2d"])], [torch.zeros_like(state["count"])]
        state["grad2d"] += info.sum_over_processes(sum(norms[1:], norms[0]))
        state["count"] += info.sum_over_processes(sum(counts[1:], counts[0]))

    def _grow(self, params, optimizers, state: dict, info: StepInfo) -> None:
        avg = state["grad2d"] / state["count"].clamp_min(1)
        high = avg > self.grow_grad2d
        small = torch.exp(params["scales"].detach()).max(-1).values <= self.grow_scale3d * info.scene_scale
        clone, split = high & small, high & ~small
        if clone.any():
            ops.append(params, optimizers, {k: v.detach()[clone] for k, v in params.items()})
            split = torch.cat([split, split.new_zeros(int(clone.sum()))])
        if split.any():
            self._split(params, optimizers, split, info.generator)

    @staticmethod
    def _split(params, optimizers, mask: Tensor, generator: torch.Generator) -> None:
        """Replace each masked Gaussian by two, sampled from it and 1.6x smaller."""
        src = {k: v.detach()[mask] for k, v in params.items()}
        scales = torch.exp(src["scales"])  # [S, 3]
        R = quat_to_rotmat(src["quats"])  # [S, 3, 3]
        new = {}
        for k, v in src.items():
            new[k] = torch.cat([v, v])
        offsets = torch.randn(2, *scales.shape, generator=generator, device=scales.device) * scales  # [2, S, 3]
        new["means"] = (src["means"] + (R @ offsets[..., None])[..., 0]).reshape(-1, 3)
        new["scales"] = torch.log(scales / 1.6).repeat(2, 1)
        ops.keep(params, optimizers, ~mask)
        ops.append(params, optimizers, new)

    def _prune(self, params, optimizers, state: dict, info: StepInfo) -> None:
        remove = torch.sigmoid(params["opacities"].detach()) < self.prune_opacity
        if self.reset_every and info.step > self.reset_every:
            remove |= torch.exp(params["scales"].detach()).max(-1).values > self.prune_scale3d * info.scene_scale
        if remove.any():
            ops.keep(params, optimizers, ~remove)
