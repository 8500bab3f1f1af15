"""Training a splat model on a scene: data, the loop, evaluation and checkpoints around `train_step`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Union

import torch
import tyro

from spatial.errors import SpatialError
from spatial.host_syncs import host_only
from spatial.scene import Scene
from spatial.splats.appearance import ImageAppearance
from spatial.splats.appearance import apply as apply_colour
from spatial.splats.model import init_splats, random_points, render_splats, sh_degree_of
from spatial.splats.step import CHECK_EVERY, StepConfig, TrainState, check_finite, make_optimizers, train_step
from spatial.splats.strategies.default import DefaultStrategy
from spatial.splats.strategies.mcmc import MCMCStrategy
from spatial.training.checkpoint import check_generator, check_like, check_optimizer_state
from spatial.training.trainer import (
    RunConfig,
    TrainerBase,
    capture_warnings,
    generator_state,
    held_out_protocol,
    load_generator_state,
    tensors_to,
)


@dataclass
class SplatTrainConfig(RunConfig):
    step: StepConfig = field(default_factory=StepConfig)
    """Loss, learning rates, SH schedule and rasterizer settings."""
    strategy: Union[
        Annotated[DefaultStrategy, tyro.conf.subcommand("default")],
        Annotated[MCMCStrategy, tyro.conf.subcommand("mcmc")],
    ] = field(default_factory=DefaultStrategy)
    """Densification: 'default' (clone/split/prune, as 3DGS) or 'mcmc' (3DGS as MCMC)."""
    batch_size: int = 1
    """Views per step and training process; the loss is their mean (gsplat's batches). With torchrun, every
    process renders its own batch_size views of each step."""
    init_opacity: float = 0.1
    """Opacity of the initial Gaussians."""
    init_scale: float = 1.0
    """Initial size relative to the distance to the nearest sparse points."""
    random_init_points: int = 100_000
    """Gaussians placed at random in the camera bounds when the scene has no sparse points."""
    random_background: bool = False
    """For images with alpha: a random background every step, so transparent areas stay empty."""
    coarse_until: int = 0
    """Steps before this one train on half-size images (a quarter of the pixels: coarse to fine, faster)."""


class SplatTrainer(TrainerBase):
    """Owns the training data and state; `step()` advances one step, `evaluate()` scores the test views."""

    def __init__(self, scene: Scene, config: SplatTrainConfig, out: Path):
        super().__init__(scene, config, out)
        scene = self.scene
        cams = scene.cameras
        if cams.model.value != "PINHOLE" and bool((cams.dist != 0).any()):
            raise SpatialError(f"{scene.root}: the cameras are distorted ({cams.model.value}); splat training "
                               "needs undistorted images: undistort them first (COLMAP's image_undistorter)")
        if config.batch_size < 1:
            raise SpatialError(f"--batch-size must be at least 1, got {config.batch_size}")
        self.scene_scale = 1.1 * max(scene.extent, 1e-6)
        self.world_to_cam = cams.world_to_cam.to(self.device)
        self.K = cams.K.to(self.device)
        self.images = {i: torch.from_numpy(scene.load_rgba(i)).to(self.device) for i in scene.train_ids}
        self.has_alpha = any(bool((img[..., 3] < 1).any()) for img in self.images.values())
        self.warnings = capture_warnings(list(self.images.values()), [scene.image_names[i] for i in self.images])
        # Two random streams: the view order is CPU bookkeeping; densification noise and random
        # backgrounds are drawn where the parameters live.
        self.view_generator = torch.Generator(device="cpu").manual_seed(config.seed)
        generator = torch.Generator(device=self.device).manual_seed(config.seed)
        params = self._initial_params()
        self.state = TrainState(params, make_optimizers(params, config.step.lr, self.scene_scale),
                                config.strategy.init_state(params), generator)
        self._rows = {index: row for row, index in enumerate(scene.train_ids)}  # appearance row of each view
        self._add_appearance(self.state)
        appearance = config.step.appearance
        self.gains = self.recorded_exposure_gains(  # [C] on the device, or None
            appearance.exposure, "each image's exposure is learned with the rest of its appearance"
            if appearance.per_image else "every image is rendered at one exposure")
        self._order: list[int] = []
        self._half: dict[int, torch.Tensor] = {}  # half-size training images, made on first use
        if scene.points.shape[0] == 0:
            self.notes.append(f"{scene.root} has no sparse points; starting from {config.random_init_points:,} "
                              "Gaussians at random within the camera bounds")

    def _initial_params(self) -> torch.nn.ParameterDict:
        scene, cfg = self.scene, self.config
        if scene.points.shape[0] > 0:
            points, colors = scene.points, scene.point_colors.float() / 255.0
        else:
            generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
            points, colors = random_points(cfg.random_init_points, scene.center, self.scene_scale, generator)
        return init_splats(points.to(self.device), colors.to(self.device), cfg.step.sh_degree, cfg.init_opacity,
                           cfg.init_scale)

    def _add_appearance(self, state: TrainState) -> None:
        if self.config.step.appearance.per_image:
            state.appearance = ImageAppearance(len(self.scene.train_ids), self.device)
            state.appearance_optimizer = torch.optim.Adam(state.appearance.parameters(),
                                                          lr=self.config.step.appearance.lr, eps=1e-15)

    # ---- what run_training and the live viewer ask (see TrainerBase) ------------------------
    @property
    def step_count(self) -> int:
        return self.state.step

    def describe(self) -> str:
        from spatial.render import backend_for

        backend = backend_for(self.device, self.config.step.render)
        return (f"training splats on {len(self.scene.train_ids)} views of {self.scene.root} on {self.device} "
                f"({backend} rasterizer)")

    def progress_text(self, stats: dict) -> str:
        return f"loss {stats['loss']:.4f}  psnr {stats['psnr']:.2f}  gaussians {stats['gaussians']:,}"

    def snapshot(self):
        """The current splats as a `SplatModel` (detached copies on the CPU)."""
        from spatial.trained import SplatModel

        params = {k: v.detach().to("cpu", copy=True) for k, v in self.state.params.items()}
        return SplatModel(params, self.out, self.scene.root, self.config.downscale,
                          tuple(self.background.tolist()))

    # ---- training ---------------------------------------------------------------------------
    def next_view(self) -> int:
        if not self._order:
            with host_only():  # the view order is the host's: a CPU generator's permutation, read on the CPU
                perm = torch.randperm(len(self.scene.train_ids), generator=self.view_generator, device="cpu").tolist()
            self._order = [self.scene.train_ids[i] for i in perm]
        return self._order.pop()

    def step(self) -> dict:
        """One step over batch_size views per process. Every process draws the whole step's views and
        backgrounds from the same streams and takes its own share, so they all stay in step with one
        another, and two processes of batch size 1 see what one process of batch size 2 sees."""
        B, procs = self.config.batch_size, self.processes
        mine = slice(procs.rank * B, (procs.rank + 1) * B)
        views = [self.next_view() for _ in range(B * procs.world_size)][mine]
        if self.has_alpha and self.config.random_background:
            backgrounds = torch.rand(B * procs.world_size, 3, generator=self.state.generator, device=self.device)[mine]
        else:
            backgrounds = self.background.expand(B, 3)
        coarse = self.state.step < self.config.coarse_until
        if not coarse and self._half:
            self._half.clear()  # the coarse steps are over
        images = [self._half_size(i) if coarse else self.images[i] for i in views]
        targets = [image[..., :3] * image[..., 3:] + bg * (1 - image[..., 3:])
                   for image, bg in zip(images, backgrounds)]
        # the views' rows by integer selection: indexing with the list would copy it to the device, a wait there
        K = torch.stack([self.K[v] for v in views])  # [B, 3, 3]
        world_to_cam = torch.stack([self.world_to_cam[v] for v in views])  # [B, 4, 4]
        gains = None if self.gains is None else torch.stack([self.gains[v] for v in views])  # [B]
        if coarse:  # the same pinhole on pixels twice as large
            K = torch.cat([K[:, :2] / 2, K[:, 2:]], dim=1)
        # NaN Gaussians are culled by the rasterizer, so the loss alone would not show them.
        if self.state.step % CHECK_EVERY == 0:
            check_finite(self.state.params, self.state.step)
            procs.check_identical(self.state.params, self.state.step)
        return train_step(self.state, self.config.step, self.config.strategy, targets, world_to_cam, K, backgrounds,
                          self.scene_scale, procs, [self._rows[v] for v in views], gains)

    def _half_size(self, index: int) -> torch.Tensor:
        """The image box-filtered to half size `[H/2, W/2, 4]`, kept for the coarse steps. Colour is averaged
        premultiplied by alpha, so compositing it over a background equals box-filtering the composite."""
        if index not in self._half:
            image = self.images[index].permute(2, 0, 1)[None]  # [1, 4, H, W]
            alpha = torch.nn.functional.avg_pool2d(image[:, 3:], 2)  # [1, 1, H/2, W/2]
            rgb = torch.nn.functional.avg_pool2d(image[:, :3] * image[:, 3:], 2) / alpha.clamp_min(1e-12)
            self._half[index] = torch.cat([rgb, alpha], 1)[0].permute(1, 2, 0).contiguous()
        return self._half[index]

    # ---- evaluation and checkpoints (the rest is TrainerBase's) ------------------------------
    def render_view(self, index: int) -> torch.Tensor:
        cfg = self.config.step
        W, H = int(self.scene.cameras.width[index]), int(self.scene.cameras.height[index])
        out = render_splats(self.state.params, self.world_to_cam[index:index + 1], self.K[index:index + 1], W, H,
                            cfg.sh_degree, self.background, cfg.render)
        image = out.rgb[0] if self.gains is None else out.rgb[0] * self.gains[index]  # [H, W, 3]
        appearance = self.state.appearance
        if appearance is None:
            return image
        if cfg.appearance.held_out == "nearest":
            return appearance(image, self._rows[self.nearest_training_view[index]])
        if self.gains is None:
            return image
        # at its exposure, with the part of the learned appearance that follows exposure over the training photos
        log_gains = torch.log(self.gains)  # [C]
        return apply_colour(image, appearance.following(log_gains[self.scene.train_ids], log_gains[index]))

    def eval_extras(self) -> dict:
        extras = {"gaussians": self.state.params["means"].shape[0]}
        appearance = self.config.step.appearance
        extras["held_out"] = held_out_protocol(appearance.held_out if appearance.per_image else None,
                                               self.gains is not None, follows_exposure=True)
        return extras

    def checkpoint_state(self) -> dict:
        s = self.state
        return {
            "params": {k: v.detach().cpu() for k, v in s.params.items()},
            "optimizers": {k: o.state_dict() for k, o in s.optimizers.items()},
            "method": "splat",
            "strategy_state": tensors_to(s.strategy_state, "cpu"),
            "generator": generator_state(s.generator),
            "view_generator": generator_state(self.view_generator),
            "order": list(self._order),
            "scene_scale": self.scene_scale,
            **({} if s.appearance is None else {
                "appearance": s.appearance.transforms.detach().cpu(),
                "appearance_optimizer": s.appearance_optimizer.state_dict()}),
        }

    def check_finite(self) -> None:
        check_finite(self.state.params, self.state.step)

    def load_checkpoint(self, path: Path) -> None:
        """Restore a checkpoint of this run, every part of it checked against the run's own first (a damaged or
        edited one is a one-line error, and nothing of the run is replaced)."""
        from spatial.trained import checked_params

        payload = self.read_checkpoint(path)
        if payload.get("method", "splat") != "splat":
            raise SpatialError(f"{path}: not a splat checkpoint (it holds a {payload['method']!r:.40} model)")
        own = self.checkpoint_state()
        saved_params = checked_params(path, payload.get("params"))  # every tensor there, shapes agreeing, finite
        if saved_params["shN"].shape[1] != own["params"]["shN"].shape[1]:
            raise SpatialError(f"{path}: cannot resume from it: its Gaussians have SH degree "
                               f"{sh_degree_of(saved_params)}, this run's {sh_degree_of(own['params'])}")
        rows = (own["params"]["means"].shape[0], saved_params["means"].shape[0])
        check_like(path, payload, {k: own[k] for k in ("strategy_state", "order", "scene_scale")}, rows=rows)
        if "generator" not in payload:
            raise SpatialError(f"{path}: cannot resume from it: it has no 'generator'")
        step = payload["step"]  # checked by read_checkpoint
        if not set(payload["order"]) <= set(self.scene.train_ids):
            raise SpatialError(f"{path}: cannot resume from it: its view order names images this scene does not "
                               "train on")
        for key in ("generator", "view_generator"):
            check_generator(path, payload.get(key, payload["generator"]), own[key], key)
        params = torch.nn.ParameterDict({k: torch.nn.Parameter(v) for k, v in saved_params.items()})
        params = params.to(self.device)
        optimizers = make_optimizers(params, self.config.step.lr, self.scene_scale)
        check_like(path, payload, {"optimizers": {name: {} for name in optimizers}})
        for name, opt in optimizers.items():
            check_optimizer_state(path, payload["optimizers"][name], opt, f"optimizers.{name}")
        state = TrainState(params, optimizers, tensors_to(payload["strategy_state"], self.device),
                           self.state.generator, step)
        self._add_appearance(state)
        if state.appearance is not None and "appearance" in payload:
            saved = payload["appearance"]
            if not isinstance(saved, torch.Tensor) or saved.shape != state.appearance.transforms.shape \
                    or not bool(torch.isfinite(saved).all()):
                raise SpatialError(f"{path}: its per-image appearance is not one colour transform [3, 4] for each "
                                   f"of the {len(self.scene.train_ids)} photos this scene trains on")
            check_optimizer_state(path, payload.get("appearance_optimizer"), state.appearance_optimizer,
                                  "appearance_optimizer")
        for name, opt in optimizers.items():  # everything checked: now restored
            opt.load_state_dict(payload["optimizers"][name])
        if state.appearance is not None and "appearance" in payload:
            with torch.no_grad():
                state.appearance.transforms.copy_(payload["appearance"])
            state.appearance_optimizer.load_state_dict(payload["appearance_optimizer"])
        self.state = state
        load_generator_state(self.state.generator, payload["generator"], self.config.seed + step)
        load_generator_state(self.view_generator, payload.get("view_generator", payload["generator"]),
                             self.config.seed + step)
        self._order = list(payload["order"])

