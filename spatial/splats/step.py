"""One training step of 3D Gaussian Splatting, as a function a CLI, a viewer or a script can call."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import tyro
from torch import Tensor

from spatial.errors import SpatialError
from spatial.host_syncs import host_only
from spatial.metrics import psnr, ssim
from spatial.render import RenderOptions, backend_for
from spatial.splats.appearance import AppearanceConfig, ImageAppearance
from spatial.splats.model import render_splats
from spatial.splats.strategies.base import RenderedView, StepInfo, Strategy
from spatial.training.distributed import ONE_PROCESS, Processes

CHECK_EVERY = 10
"""Steps between divergence checks: each check waits for the device, so it is not done every step."""


@dataclass
class LearningRates:
    means: float = 1.6e-4
    """Initial position learning rate (x scene scale), decayed exponentially to `means_final` of it."""
    means_final: float = 0.01
    """Fraction of the initial position learning rate reached at the last step."""
    scales: float = 5e-3
    """Log-scale learning rate."""
    quats: float = 1e-3
    """Rotation learning rate."""
    opacities: float = 5e-2
    """Logit-opacity learning rate."""
    sh0: float = 2.5e-3
    """Base colour learning rate."""
    shN: float = 2.5e-3 / 20
    """Higher spherical-harmonics learning rate."""


@dataclass
class TrainRenderOptions(RenderOptions):
    """The rasterizer settings a training step takes from its config: `RenderOptions` without the two that the
    step sets itself, so the command line offers no flag that cannot take effect."""

    sh_degree: tyro.conf.Suppress[int | None] = 3  # the step renders at its SH schedule's degree (sh_degree above)
    absgrad: tyro.conf.Suppress[bool] = False  # on when the strategy reads it (DefaultStrategy.absgrad)


@dataclass
class StepConfig:
    steps: int = 30_000
    """Total number of training steps (sets the position learning-rate schedule)."""
    sh_degree: int = 3
    """Highest spherical-harmonics degree."""
    sh_degree_interval: int = 1000
    """Steps between raising the active SH degree by one, starting from 0."""
    ssim_lambda: float = 0.2
    """Weight of the D-SSIM term in the loss (the rest is L1)."""
    lr: LearningRates = field(default_factory=LearningRates)
    """Learning rates of the Adam optimizers, one per parameter."""
    render: TrainRenderOptions = field(default_factory=TrainRenderOptions)
    """Rasterizer settings (backend, anti-aliasing, near plane, ...)."""
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    """Per-image colour transforms (exposure, white balance) learned beside the splats."""


@dataclass
class TrainState:
    params: torch.nn.ParameterDict
    optimizers: dict[str, torch.optim.Optimizer]
    strategy_state: dict  # the strategy's statistics, tensors on the parameters' device
    generator: torch.Generator  # on the parameters' device: densification noise, random backgrounds
    step: int = 0
    appearance: ImageAppearance | None = None  # per-image colour transforms, when learned
    appearance_optimizer: torch.optim.Optimizer | None = None


def make_optimizers(params: torch.nn.ParameterDict, lr: LearningRates, scene_scale: float) -> dict:
    rates = {"means": lr.means * scene_scale, "quats": lr.quats, "scales": lr.scales,
             "opacities": lr.opacities, "sh0": lr.sh0, "shN": lr.shN}
    return {name: torch.optim.Adam([params[name]], lr=rates[name], eps=1e-15) for name in params}


def means_lr(config: StepConfig, step: int, scene_scale: float) -> float:
    return config.lr.means * scene_scale * config.lr.means_final ** min(step / max(config.steps, 1), 1.0)


def train_step(
    state: TrainState,
    config: StepConfig,
    strategy: Strategy,
    targets: list[Tensor],  # B x [H_b, W_b, 3] in 0-1, each composited over its background
    world_to_cam: Tensor,  # [B, 4, 4]
    K: Tensor,  # [B, 3, 3]
    backgrounds: Tensor,  # [B, 3]
    scene_scale: float,
    processes: Processes = ONE_PROCESS,
    image_rows: list[int] | None = None,  # B rows of state.appearance, one per view, when it is learned
    gains: Tensor | None = None,  # [B] each view's exposure gain on its render (see exposure_gains), when known
) -> dict:
    """Render B views, take one optimizer step on the mean of their losses (and the strategy's regularisers),
    let the strategy densify.

    Under several training processes (`processes`, see spatial/training/distributed.py) each renders its own views, and
    the gradients are averaged over all of them before the step, so every process takes the same step.

    Returns the step's stats: `loss` and `psnr` (means over the views) as 0-dim tensors on the device (read them
    with `float()` only when shown, since reading waits for the GPU), `gaussians` and `sh_degree` as ints.
    The loss is checked for NaN every `CHECK_EVERY` steps, for the same reason.
    """
    B = len(targets)
    step = state.step
    lr = means_lr(config, step, scene_scale)
    for group in state.optimizers["means"].param_groups:
        group["lr"] = lr
    sh_degree = min(step // config.sh_degree_interval, config.sh_degree)

    # One view at a time: rendered, its loss taken and its backward pass run before the next view, so a batch
    # needs the memory of one view, and each view's gradient is whole before the next is added to it. That is how
    # training processes combine theirs too (each its own views, then the sum), so N processes of batch size B
    # step exactly as one process of batch size N x B. The sum is divided by B before the optimizers step.
    appearance = state.appearance if step >= config.appearance.start else None
    if appearance is not None and (image_rows is None or len(image_rows) != B):
        raise ValueError(f"train_step learns per-image appearance: give image_rows for each of the {B} views")
    views, images, losses = [], [], []
    options = strategy.render_options(config.render)
    loss_ssim = ssim
    if backend_for(state.params["means"].device, options) == "cpu":  # the CPU backend brings its own SSIM kernel
        from spatial.render.cpu_backend import ssim_cpu as loss_ssim
    for b, target in enumerate(targets):
        H, W = target.shape[:2]
        out = render_splats(state.params, world_to_cam[b:b + 1], K[b:b + 1], W, H, sh_degree, backgrounds[b:b + 1],
                            options)
        view = RenderedView(out, W, H)
        strategy.step_pre_backward(state.params, state.optimizers, state.strategy_state,
                                   StepInfo(step, [view], scene_scale, lr, state.generator, processes.sum))
        image = out.rgb[0] if gains is None else out.rgb[0] * gains[b]
        image = image if appearance is None else appearance(image, image_rows[b])
        l1 = torch.abs(image - target).mean()
        d_ssim = 1 - loss_ssim(image[None], target[None])
        loss = (1 - config.ssim_lambda) * l1 + config.ssim_lambda * d_ssim
        if b == B - 1:  # the regularisers once for the step, weighted to survive the division by B
            regularization = strategy.regularization(state.params)
            loss = loss + (regularization if B == 1 else B * regularization)
        if step % CHECK_EVERY == 0 and not torch.isfinite(loss):
            raise SpatialError(f"training diverged at step {step}: the loss is {loss.item()} "
                               "(try lower learning rates, or check the scene's cameras)")
        loss.backward()
        views.append(view)
        images.append(image.detach())
        losses.append(loss.detach())
    optimizers = list(state.optimizers.values())
    learned = list(state.params.values())
    if appearance is not None:
        optimizers.append(state.appearance_optimizer)
        learned += list(appearance.parameters())
    if B > 1:
        for p in learned:
            if p.grad is not None:
                p.grad /= B
    processes.average_gradients(learned if appearance is not None else state.params)
    info = StepInfo(step, views, scene_scale, lr, state.generator, processes.sum)
    with host_only():  # torch's Adam keeps its step counts on the host and reads them there
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    strategy.step_post_backward(state.params, state.optimizers, state.strategy_state, info)
    state.step += 1
    psnrs = [psnr(image, target) for image, target in zip(images, targets)]
    return {"loss": sum(losses[1:], losses[0]) / B, "psnr": sum(psnrs[1:], psnrs[0]) / B,
            "gaussians": state.params["means"].shape[0], "sh_degree": sh_degree}


def check_finite(params: torch.nn.ParameterDict, step: int) -> None:
    """Raise a clear error naming the parameter when any Gaussian holds NaN or infinity."""
    for name, p in params.items():
        bad = ~torch.isfinite(p.detach())
        if bad.any():
            rows = bad.reshape(p.shape[0], -1).any(-1).nonzero()[:, 0]
            raise SpatialError(f"training diverged at step {step}: {name} of {len(rows)} Gaussians is NaN or "
                               f"infinite (first: Gaussian {rows[0].item()})")
