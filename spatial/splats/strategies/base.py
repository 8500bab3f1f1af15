"""The interface every densification strategy implements: one argument type for all of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from spatial.render import RenderOptions, RenderOutput


@dataclass
class RenderedView:
    """One view of the step, as rendered (train_step renders each view on its own)."""

    render: RenderOutput  # C = 1: means2d [1, N, 2], radii, visible [1, N], ...
    width: int  # rendered image size
    height: int


def _no_other_processes(tensor: Tensor) -> Tensor:
    return tensor


@dataclass
class StepInfo:
    """What a strategy may read about the current training step."""

    step: int  # 0-based index of the step being taken
    views: list[RenderedView]  # the step's renders (before backward: the one view whose backward pass comes next)
    scene_scale: float  # length scale of the scene (radius of the camera centres, x 1.1)
    means_lr: float  # current learning rate of the means (MCMC's noise is scaled by it)
    generator: torch.Generator  # the trainer's random stream on the parameters' device (reproducible resumes)
    # sums a statistic over every training process (spatial/training/distributed.py), so that all of them densify alike
    sum_over_processes: Callable[[Tensor], Tensor] = _no_other_processes


class Strategy(Protocol):
    def init_state(self, params: torch.nn.ParameterDict) -> dict:
        """Per-run statistics, saved in checkpoints with the parameters."""

    def render_options(self, options: RenderOptions) -> RenderOptions:
        """The training renders' options, with what this strategy reads from the renderer turned on."""

    def step_pre_backward(self, params, optimizers, state: dict, info: StepInfo) -> None:
        """Before `loss.backward()`: ask for the gradients the strategy needs."""

    def step_post_backward(self, params, optimizers, state: dict, info: StepInfo) -> None:
        """After `backward()` and before the optimizers step: grow, prune, relocate."""

    def regularization(self, params: torch.nn.ParameterDict) -> Tensor:
        """Extra loss terms (zero for strategies that have none)."""
