"""One NeRF training step, as a function a CLI, a viewer or a script can call."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from spatial.errors import SpatialError
from spatial.host_syncs import host_only
from spatial.nerf.depth_prior import BAND, line_of_sight_loss, weight_before
from spatial.nerf.model import NerfModel
from spatial.nerf.rendering import distortion_loss, interlevel_loss
from spatial.nerf.unseen import Sight, lone_weight, unseen_penalty
from spatial.splats.step import CHECK_EVERY
from spatial.training.distributed import ONE_PROCESS, Processes


@dataclass
class LossConfig:
    interlevel: float = 1.0
    """Weight of the proposal (interlevel) loss."""
    distortion: float = 0.002
    """Weight of the distortion loss (compact weights along each ray; fewer floaters)."""
    depth: float = 0.0
    """Weight of the sparse points' line-of-sight loss (spatial/nerf/depth_prior.py): no weight in front of the
    point a training pixel sees, all of it by just behind it. 0: off, as nerfacto."""
    free: float = 0.0
    """Weight of the free-space loss (spatial/nerf/depth_prior.py): along every ray of a training photo, no weight
    nearer than half the distance of the nearest sparse points the photo sees. 0: off."""
    unseen: float = 0.0
    """Weight of the unseen-space loss (spatial/nerf/unseen.py): density pushed to zero at random points that fewer
    than two training photos see, so a view looking there sees through instead of a haze. 0: off."""
    lone: float = 0.0
    """Weight of the lone-space loss (spatial/nerf/unseen.py): along every training ray, the weight in space fewer
    than two training photos see, where one photo alone would paint what it sees at any distance. 0: off."""
    depth_share: float = 0.25
    """Share of each step's rays drawn at training pixels that see a sparse point, when --losses.depth > 0."""


def check_losses(losses: LossConfig) -> None:
    """Refuse loss settings no run can use (a SpatialError naming the option)."""
    for name in ("interlevel", "distortion", "depth", "free", "unseen", "lone"):
        if not getattr(losses, name) >= 0:
            raise SpatialError(f"--losses.{name} must be 0 or more, got {getattr(losses, name)!r}")
    if not 0 < losses.depth_share <= 1:
        raise SpatialError(f"--losses.depth-share must be above 0 and at most 1, got {losses.depth_share!r}")


@dataclass
class RayBatch:
    origins: Tensor  # [R, 3] world
    dirs: Tensor  # [R, 3] unit, world
    image_ids: Tensor  # [R] int64, which training image each ray comes from
    target: Tensor  # [R, 3] in 0-1, composited over `background`
    background: Tensor  # [R, 3] or [3]
    gains: Tensor | None = None  # [R] each ray's photo's recorded exposure gain (NerfTrainConfig.exposure), or None
    depth: Tensor | None = None  # [R] distance of the sparse point each ray sees, 0 where it sees none; or None
    free: Tensor | None = None  # [R] distance in front of each ray's camera taken as empty (0: none), or None
    unseen: Tensor | None = None  # [N, 3] world points drawn where training photos may not see (--losses.unseen)
    unseen_mask: Tensor | None = None  # [N] float, 1 where no training photo sees the point


def train_step(model: NerfModel, optimizer: torch.optim.Optimizer, scheduler, batch: RayBatch, losses: LossConfig,
               step: int, generator: torch.Generator, autocast: bool = False,
               processes: Processes = ONE_PROCESS, sight: Sight | None = None) -> dict:
    """Render the batch's rays, take one optimizer step. Returns the step's stats as 0-dim tensors on the
    device (`float()` them to show them; reading waits for the GPU). `autocast`: bfloat16 fields. Under several
    training processes (spatial/training/distributed.py) each renders its share of the rays, and the gradients are
    averaged over all of them before the step. `sight`: what the training photos see, for --losses.lone."""
    with torch.autocast(batch.origins.device.type, dtype=torch.bfloat16, enabled=autocast):
        extra = None if losses.unseen == 0 else batch.unseen  # looked up with the samples: one pass per field
        out = model(batch.origins, batch.dirs, batch.image_ids, batch.background, step, generator, extra)
        unseen = None if extra is None else \
            sum(unseen_penalty(density, model.space, batch.unseen_mask) for density in out.extra_density)
    rgb = out.rgb.float() if batch.gains is None else out.rgb.float() * batch.gains[:, None]  # [R, 3]
    mse = torch.mean((rgb - batch.target) ** 2)
    weights = out.weights.float()  # [R, S]
    loss = mse + losses.interlevel * interlevel_loss(out.edges, weights, out.proposals) \
        + losses.distortion * distortion_loss(out.edges, weights)
    if batch.depth is not None and losses.depth > 0:
        near, far = (out.spacing.to_s(batch.depth[:, None] * (1 + side * BAND))[:, 0] for side in (-1, 1))  # [R]
        loss = loss + losses.depth * line_of_sight_loss(out.edges, weights, near, far,
                                                        (batch.depth > 0).float())
    if batch.free is not None and losses.free > 0:
        loss = loss + losses.free * weight_before(out.edges, weights,
                                                  out.spacing.to_s(batch.free[:, None])[:, 0]).mean()
    if unseen is not None:
        loss = loss + losses.unseen * unseen
    if sight is not None and losses.lone > 0:
        loss = loss + losses.lone * lone_weight(sight, batch.origins, batch.dirs, out.edges, weights, out.spacing)
    if step % CHECK_EVERY == 0 and not torch.isfinite(loss):  # a NaN stays in the fields: found by the next check
        raise SpatialError(f"training diverged at step {step}: the loss is {loss.item()} "
                           "(try a lower --lr, or check the scene's cameras)")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    processes.average_gradients(model.parameters())
    with host_only():  # torch's Adam keeps its step counts on the host and reads them there, as the scheduler does
        optimizer.step()
        scheduler.step()
    return {"loss": loss.detach(), "psnr": -10 * torch.log10(mse.detach().clamp(min=1e-10)),
            "alpha": out.alpha.detach().float().mean()}
