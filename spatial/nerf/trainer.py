"""Training a NeRF on a scene: rays from every training image, the loop, evaluation, checkpoints.

A `TrainerBase` like `SplatTrainer` (see spatial/training/trainer.py), so `spatial train nerf` shares the
progress bar, evaluation, checkpoints, `--resume` and `--viewer` with `spatial train splat`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch

from spatial.errors import SpatialError
from spatial.io.colmap import point_views_beside
from spatial.nerf.depth_prior import free_distances, visible_points
from spatial.nerf.field import SpaceMap
from spatial.nerf.model import ModelConfig, NerfModel, check_weights
from spatial.nerf.step import CHECK_EVERY, LossConfig, RayBatch, check_losses, train_step
from spatial.nerf.unseen import PHOTOS, Sight, unseen_cells, unseen_points
from spatial.nerf.unseen import POINTS as UNSEEN_POINTS
from spatial.scene import Scene
from spatial.training.checkpoint import check_generator, check_like, check_optimizer_state
from spatial.training.trainer import (
    RunConfig,
    TrainerBase,
    capture_warnings,
    generator_state,
    held_out_protocol,
    load_generator_state,
)


@dataclass
class NerfTrainConfig(RunConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    """Fields and sampling."""
    losses: LossConfig = field(default_factory=LossConfig)
    """Weights of the regularising losses."""
    steps: int = 30_000
    """Total number of training steps (sets the learning-rate schedule)."""
    rays_per_batch: int = 4096
    """Rays per step, drawn at random from all training images."""
    lr: float = 1e-2
    """Adam learning rate of every field at the first step."""
    lr_final: float = 1e-3
    """Learning rate reached at the last step (exponential decay)."""
    bounds: Literal["auto", "box", "unbounded"] = "auto"
    """box: a bounded object scene inside a box (from the sparse points, or --box-min/--box-max);
    unbounded: scene contraction for captures that see the world around them; auto: box when the
    images have transparent backgrounds, else unbounded."""
    box_min: tuple[float, float, float] | None = None
    """Lower corner of the scene box in world units (default: from the sparse points)."""
    box_max: tuple[float, float, float] | None = None
    """Upper corner of the scene box (see --box-min)."""
    random_background: bool = True
    """For images with alpha: a random background colour per ray, so transparent areas learn to be empty."""
    mixed_precision: bool = False
    """bfloat16 autocast for the fields on CUDA (ignored on the CPU). Off by default: on the GPU it was measured on,
    it made steps slower, not faster (scripts/results/gpu_check.txt, which measures both)."""
    eval_chunk: int = 8192
    """Rays rendered at once when rendering whole images."""
    held_out_appearance: Literal["mean", "nearest"] = "mean"
    """The appearance embedding a held-out photo is rendered and scored with: the training photos' mean (the world's
    own colours, which the viewer and renders show), or that of the training photo taken nearest it (by camera
    position: in the same light, with the camera's settings of that moment)."""
    exposure: bool = False
    """Render each photo (held-out ones too) at its recorded exposure (EXIF exposure time x ISO / f-number^2,
    relative to the training photos'), where the scene has exposures.json; spatial process writes it. The field then
    holds the training photos' mean exposure, as the splats' `--step.appearance.exposure` does."""


def space_map(scene: Scene, config: NerfTrainConfig, has_alpha: bool) -> SpaceMap:
    """The scene box (bounded) or the contraction's centre and radius (unbounded)."""
    bounded = config.bounds == "box" or (config.bounds == "auto" and has_alpha)
    if not bounded:
        # contracted at the cameras' extent, a forward-facing capture's wall (the phone facade: 18-34 units off,
        # cameras within 6) gets 1/25 of the grid cells per unit of depth that it gets per unit of width, far too few
        # to place a surface to the pixel, and the NeRF learns a blur (17 dB held out against 27 dB with the wider
        # radius, in 200 s of training)
        radius = scene.world_radius()
        return SpaceMap(scene.center.float(), torch.full((3,), radius, device="cpu"), bounded=False,
                        density_scale=1 / radius)
    if (config.box_min is None) != (config.box_max is None):
        raise SpatialError("give both --box-min and --box-max, or neither")
    if config.box_min is not None:
        lo, hi = torch.tensor(config.box_min, device="cpu"), torch.tensor(config.box_max, device="cpu")
        if not bool((hi > lo).all()):
            raise SpatialError(f"--box-max {config.box_max} must exceed --box-min {config.box_min} on every axis")
    elif scene.points.shape[0] >= 10:
        lo = torch.quantile(scene.points.float(), 0.005, dim=0)
        hi = torch.quantile(scene.points.float(), 0.995, dim=0)
        pad = 0.05 * float((hi - lo).max())
        lo, hi = lo - pad, hi + pad
    else:
        raise SpatialError(f"{scene.root}: a bounded (box) scene needs sparse points to size its box, and this "
                           "one has none; give --box-min and --box-max, or --bounds unbounded")
    box = SpaceMap((lo + hi) / 2, (hi - lo) / 2, bounded=True)
    return replace(box, density_scale=1 / box.radius)  # densities per unit of the box's largest half size


class NerfTrainer(TrainerBase):
    def __init__(self, scene: Scene, config: NerfTrainConfig, out: Path):
        super().__init__(scene, config, out)
        check_losses(config.losses)
        scene = self.scene
        self.cameras = scene.cameras.to(self.device).simplified()  # read here once, not per step
        self.train_ids = torch.tensor(scene.train_ids, device=self.device)
        # every training pixel in one table (images may differ in size, as undistorted captures do)
        images = [torch.from_numpy(scene.load_rgba(i)) for i in scene.train_ids]
        self.warnings = capture_warnings(images, [scene.image_names[i] for i in scene.train_ids])
        rgba = [img.reshape(-1, 4) for img in images]
        self.pixels = torch.cat(rgba).to(self.device)  # [P, 4]
        counts = torch.tensor([len(p) for p in rgba], device=self.device)
        self.first_pixel = torch.cumsum(counts, 0) - counts  # [I] where each image starts in `pixels`
        self.pixel_counts = counts  # [I]
        self.widths = self.cameras.width[self.train_ids]  # [I]
        self.has_alpha = bool((self.pixels[:, 3] < 1).any())
        self.depth_points = None  # the sparse points each training photo sees (--losses.depth), on the device
        self.free_distance = None  # [I] the empty distance in front of each training camera (--losses.free)
        found = None
        if config.losses.depth > 0 or config.losses.free > 0 or config.losses.unseen > 0:
            views = scene.point_views if scene.point_views is not None else \
                point_views_beside(scene.root, scene.image_names, scene.points)  # transforms.json: COLMAP's beside
            training = replace(scene, point_views=views).subset(scene.train_ids)
            found = visible_points(training.cameras, training.points, training.point_views)
            found = None if found is None else found.to(self.device)
            if config.losses.free > 0 and found is not None:
                self.free_distance = free_distances(found, len(scene.train_ids))
            self.depth_points = found if config.losses.depth > 0 else None
        # rays and sample jitter are drawn where the model lives; the global seed only sets the initial weights
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        torch.manual_seed(config.seed)
        self.space = space_map(scene, config, self.has_alpha).to(self.device)
        self.unseen_cells = None  # [U] the cells of space training photos do not wholly see (--losses.unseen)
        self.sight = None  # what the training photos see (--losses.unseen, --losses.lone), or None
        if config.losses.unseen > 0 or config.losses.lone > 0:
            self.sight = Sight.of(self.cameras[self.train_ids], self.space, found, PHOTOS)
        if config.losses.unseen > 0:
            cells = unseen_cells(self.sight, self.space)
            self.unseen_cells = cells if len(cells) else None
        self.gains = self.recorded_exposure_gains(  # [C] on the device, or None
            config.exposure, "every image is rendered at one exposure, and the appearance embedding learns what "
            "differs")
        with torch.device("cpu"):  # initial weights drawn on the CPU: the same seed gives the same model anywhere
            self.model = NerfModel(self.space, config.model, len(scene))
        self.model.to(self.device)
        # bfloat16 fields on CUDA only (slower on the CPU); tests switch it on there to check the dtypes
        self.autocast = config.mixed_precision and self.device.type == "cuda"
        self.optimizer, self.scheduler = self._optimizer()
        self.step_index = 0

    def _optimizer(self, model: NerfModel | None = None):
        # fused: one pass over all the grids' rows. On 2 CPU cores the default (foreach) Adam took 57 ms of a 140 ms
        # step of the video preset, fused 5 ms (steps of 81 ms); the same update, in another order of operations
        fused = True if self.device.type in ("cpu", "cuda") else None
        opt = torch.optim.Adam((model or self.model).parameters(), lr=self.config.lr, eps=1e-15, fused=fused)
        decay = (self.config.lr_final / self.config.lr) ** (1 / max(self.config.steps, 1))
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: decay ** min(s, self.config.steps))

    # ---- what run_training and the live viewer ask (see TrainerBase) ------------------------
    @property
    def step_count(self) -> int:
        return self.step_index

    def describe(self) -> str:
        kind = "box scene" if self.space.bounded \
            else f"unbounded scene (contracted beyond {self.space.radius:.3g} units)"
        return (f"training a NeRF on {len(self.scene.train_ids)} views of {self.scene.root} on {self.device}, "
                f"{kind}, {self.config.rays_per_batch} rays per step")

    def progress_text(self, stats: dict) -> str:
        return f"loss {stats['loss']:.4f}  psnr {stats['psnr']:.2f}"

    def export(self) -> list[tuple[str, Path]]:
        return [("model (render it with `spatial render`, mesh it with `spatial export mesh`)",
                 self.checkpoint_path())]

    def snapshot(self):
        """The current NeRF as a `TrainedNerf` (a copy on the CPU, safe to render on another thread)."""
        from spatial.nerf.trained import TrainedNerf

        with torch.device("cpu"):
            model = NerfModel(self.space.to("cpu"), self.config.model, len(self.scene))
        model.load_state_dict({k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()})
        return TrainedNerf(model.eval(), self.out, self.scene.root, self.config.downscale,
                           tuple(self.background.tolist()))

    # ---- training ---------------------------------------------------------------------------
    def sample_batch(self) -> RayBatch:
        """The step's rays, drawn alike by every training process from the same stream: each keeps its share (all
        of them with one process)."""
        R, g, device = self.config.rays_per_batch, self.generator, self.device
        image = torch.randint(len(self.train_ids), (R,), generator=g, device=device)
        pixel = (torch.rand(R, generator=g, device=device) * self.pixel_counts[image]).long()
        pixel = torch.minimum(pixel, self.pixel_counts[image] - 1)  # index within its image
        depth = None
        if self.depth_points is not None:  # every `every`-th ray through a pixel that sees a sparse point
            points, every = self.depth_points, max(round(1 / self.config.losses.depth_share), 1)
            pick = torch.randint(len(points.image), (len(range(0, R, every)),), generator=g, device=device)
            image[::every], pixel[::every] = points.image[pick], points.pixel[pick]
            depth = torch.zeros(R, device=device)
            depth[::every] = points.distance[pick]
        rgba = self.pixels[self.first_pixel[image] + pixel]  # [R, 4]
        width = self.widths[image]
        uv = torch.stack([pixel % width, pixel // width], -1).float() + 0.5
        ids = self.train_ids[image]
        origins, dirs = self.cameras[ids].pixel_rays(uv[:, None])  # one camera per ray
        if self.has_alpha and self.config.random_background:
            background = torch.rand(R, 3, generator=g, device=device)
        else:
            background = self.background
        target = rgba[:, :3] * rgba[:, 3:] + background * (1 - rgba[:, 3:])
        unseen = mask = None
        if self.unseen_cells is not None:  # points in cells not wholly seen, and which of them fewer than two see
            unseen = unseen_points(self.unseen_cells, self.space, UNSEEN_POINTS, g)  # [N, 3]
            mask = (~self.sight.seen(unseen)).float()  # [N]
        procs = self.processes
        share = R // procs.world_size  # equal shares, so every process draws its sample jitter alike
        mine = slice(procs.rank * share, (procs.rank + 1) * share)
        return RayBatch(origins[mine, 0], dirs[mine, 0], ids[mine], target[mine],
                        background[mine] if background.dim() == 2 else background,
                        None if self.gains is None else self.gains[ids[mine]],
                        None if depth is None else depth[mine],
                        None if self.free_distance is None else self.free_distance[image][mine],
                        unseen, mask)

    def step(self) -> dict:
        if self.step_index % CHECK_EVERY == 0:
            self.processes.check_identical(self.model.parameters(), self.step_index)
        stats = train_step(self.model, self.optimizer, self.scheduler, self.sample_batch(), self.config.losses,
                           self.step_index, self.generator, self.autocast, self.processes, self.sight)
        self.step_index += 1
        return stats

    # ---- evaluation and checkpoints (the rest is TrainerBase's) ------------------------------
    @torch.no_grad()
    def render(self, index: int) -> dict[str, torch.Tensor]:
        """Scene view `index`: rgb, alpha and depth `[H, W, .]`."""
        self.model.eval()
        try:
            return self.model.render_camera(self.cameras[index], self.background, self.config.eval_chunk,
                                            self._appearance_of(index))
        finally:
            self.model.train()

    def _appearance_of(self, index: int) -> int | None:
        """The appearance embedding view `index` is rendered with (None: the training photos' mean)."""
        if not self.config.model.field.appearance_dim or self.config.held_out_appearance == "mean":
            return None
        return self.nearest_training_view[index]

    def render_view(self, index: int) -> torch.Tensor:
        rgb = self.render(index)["rgb"]  # [H, W, 3]
        return rgb if self.gains is None else rgb * self.gains[index]

    def eval_extras(self) -> dict:
        appearance = self.config.held_out_appearance if self.config.model.field.appearance_dim else None
        return {"held_out": held_out_protocol(appearance, self.gains is not None)}

    def checkpoint_state(self) -> dict:
        return {
            "method": "nerf",
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": generator_state(self.generator),
            "space": self.space.state(),
            "num_images": len(self.scene),
        }

    def check_finite(self) -> None:
        names, weights = zip(*self.model.named_parameters())
        finite = torch.stack([torch.isfinite(w.detach()).all() for w in weights])  # [P] on the device: one read
        if not bool(finite.all()):
            name = names[finite.tolist().index(False)]
            raise SpatialError(f"training diverged at step {self.step_index}: weight {name} holds NaN or infinite "
                               "values")

    def load_checkpoint(self, path: Path) -> None:
        """Restore a checkpoint of this run, every part of it checked against the run's own first."""
        payload = self.read_checkpoint(path)
        if payload.get("method") != "nerf":
            raise SpatialError(f"{path}: not a NeRF checkpoint (it holds a {payload.get('method', 'splat')!r:.40} "
                               "model)")
        own = self.checkpoint_state()
        check_like(path, payload, {k: own[k] for k in ("num_images", "scheduler")})
        if payload["num_images"] != own["num_images"]:
            raise SpatialError(f"{path}: cannot resume from it: it was trained on {payload['num_images']} images, this "
                               f"scene has {own['num_images']}")
        try:
            space = SpaceMap.from_state(payload.get("space")).to(self.device)
        except ValueError as e:
            raise SpatialError(f"{path}: cannot resume from it: {e}") from None
        step = payload["step"]  # checked by read_checkpoint
        check_generator(path, payload.get("generator"), own["generator"], "generator")
        with torch.device(self.device):  # its weights are replaced by the checkpoint's at once
            model = NerfModel(space, self.config.model, payload["num_images"])
        check_weights(path, model, payload.get("model"))
        optimizer, scheduler = self._optimizer(model)
        check_optimizer_state(path, payload.get("optimizer"), optimizer, "optimizer")
        model.load_state_dict(payload["model"])  # everything checked: now restored
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        self.space, self.model, self.optimizer, self.scheduler = space, model, optimizer, scheduler
        load_generator_state(self.generator, payload["generator"], self.config.seed + step)
        self.step_index = step
