"""What every method's trainer shares: the loop, evaluation on the held-out views, checkpoint files.

A method's trainer (`SplatTrainer`, `NerfTrainer`) subclasses `TrainerBase` and supplies what is
marked below; the rest is here, so every method behaves the same on Ctrl-C, `--resume` and evaluation,
and `spatial.training.loop.run_training` (progress, export, live viewer) drives any of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from spatial.device import peak_memory_mb, pick_device
from spatial.errors import SpatialError
from spatial.files import write_json_atomic
from spatial.host_memory import keep_freed_memory
from spatial.metrics import colour_correct, psnr, ssim
from spatial.scene import Scene
from spatial.training.checkpoint import check_step, read_checkpoint, write_checkpoint
from spatial.training.distributed import processes_from_environment
from spatial.training.run_folder import checkpoint_path, eval_path, prune_checkpoints


@dataclass
class RunConfig:
    """The settings of a run that every method shares; each method's config is one (SplatTrainConfig,
    NerfTrainConfig subclass it), so they are declared once and read with their types."""

    downscale: int | None = None
    """Train on images downscaled by this factor (cached in images_N/). None (auto): by the smallest power of
    two that brings their longest side to 1600 px on a GPU or 720 px on a CPU (spatial.training.trainer.AUTO_SIDE)."""
    eval_every: int = 0
    """Evaluate on the test views every this many steps (0: only at the end)."""
    checkpoint_every: int = 1000
    """Write a checkpoint every this many steps (also at the end and on Ctrl-C)."""
    seed: int = 0
    """Seed of every random choice (initialisation, what each step trains on, densification or sample jitter)."""
    device: str = "auto"
    """Torch device: auto picks cuda when available, else cpu."""


class TrainerBase:
    def __init__(self, scene: Scene, config: RunConfig, out: Path):
        """`config`: the method's config, a `RunConfig` with the method's own settings besides."""
        self.config, self.out = config, out
        # the processes torchrun started (one without it), joined before the device is picked: on CUDA each
        # process takes its own GPU
        self.processes = processes_from_environment(str(config.device))
        self.device = pick_device(config.device)
        if self.device.type == "cpu":  # each step's large gradients reused, not faulted in afresh (host_memory.py)
            keep_freed_memory()
        notes = list(scene.notes)  # what the user should know before training starts
        if config.downscale is None:  # auto: settled here, so config.json and checkpoints record the factor
            config.downscale = auto_downscale(scene, self.device)
            if config.downscale > 1:
                notes.append(downscale_note(scene, config.downscale))
        if config.downscale < 1:
            raise SpatialError(f"--downscale {config.downscale}: must be 1 (full size) or more")
        if config.downscale > 1:
            scene = scene.downscaled(config.downscale)  # every copy, held-out ones too, checked at its camera's size
        self.scene = scene
        if len(scene.train_ids) == 0:
            raise SpatialError(f"{scene.root}: the scene has no training images")
        # [3] on the training device
        self.background = torch.tensor(scene.background_rgb, dtype=torch.float32, device=self.device)
        self.warnings: list[str] = []  # about the capture, for run_training to print (see capture_warnings)
        self.notes: list[str] = notes
        self.train_seconds = 0.0  # time spent in training steps only (not loading, evaluation or checkpoints)

    # ---- what a method supplies ---------------------------------------------------------------
    @property
    def step_count(self) -> int:
        raise NotImplementedError

    def step(self) -> dict:  # the step's stats; numbers may be 0-dim device tensors (float() them to show)
        raise NotImplementedError

    def render_view(self, index: int) -> torch.Tensor:  # [H, W, 3] of scene view `index`, as its photo is predicted
        raise NotImplementedError

    def checkpoint_state(self) -> dict:  # what save_checkpoint writes, besides step, time and config
        raise NotImplementedError

    def load_checkpoint(self, path: Path) -> None:
        raise NotImplementedError

    def describe(self) -> str:  # one line: what is trained, on what, with which backend
        raise NotImplementedError

    def progress_text(self, stats: dict) -> str:  # a step's stats for the progress bar
        raise NotImplementedError

    def export(self) -> list[tuple[str, Path]]:  # (what, file) of files the method names at the end of a run
        return []  # (a splat model's splats.ply is the run loop's: spatial.training.loop.export_run)

    def snapshot(self):  # a spatial.trained.TrainedModel of the current state: a copy, safe elsewhere
        raise NotImplementedError

    def eval_extras(self) -> dict:
        return {}

    def check_finite(self) -> None:  # a SpatialError ("training diverged at step N: ...") when the model holds NaN
        pass

    # ---- shared ---------------------------------------------------------------------------------
    def recorded_exposure_gains(self, wanted: bool, otherwise: str) -> torch.Tensor | None:
        """Each photo's gain `[C]` on the device from its recorded exposure (spatial/io/exposures.py), when
        `wanted` and the scene records them; where it does not, a note that ends with `otherwise`, and None."""
        from spatial.io.exposures import exposure_gains

        if not wanted:
            return None
        if self.scene.exposures is None:
            self.notes.append(f"{self.scene.root} records no exposure for its images (spatial process writes "
                              f"exposures.json from photos' EXIF; a video's frames have none): {otherwise}")
            return None
        return exposure_gains(self.scene.exposures, self.scene.train_ids).to(self.device)

    @cached_property
    def nearest_training_view(self) -> list[int]:
        """Per scene view, the training view whose camera is nearest it (itself for a training view): whose learned
        appearance a held-out photo is rendered with when asked (`held_out="nearest"`). A held-out photo's own
        appearance (exposure, white balance) cannot be learned, but the photo taken nearest it, usually just before
        or after it, was taken in the same light with the camera's settings of that moment. It predicts the held-out
        photo without looking at it (NeRF-W's protocol fits on half of it)."""
        centers = self.scene.cameras.centers.double().cpu()  # [C, 3]: on the CPU, read once, wherever training runs
        train = torch.tensor(self.scene.train_ids, device="cpu")
        nearest = train[torch.cdist(centers, centers[train]).argmin(1)]  # [C]
        nearest[train] = train
        return nearest.tolist()

    def train(self, steps: int, on_step: Callable[[dict], None] | None = None) -> None:
        """Run until `steps`; checkpoints periodically, and on Ctrl-C before re-raising it."""
        try:
            while self.step_count < steps:
                start = time.perf_counter()
                stats = self.step()
                self.train_seconds += time.perf_counter() - start
                if on_step is not None:
                    on_step(stats)
                s = self.step_count
                if not self.processes.main:  # process 0 writes the checkpoints and evaluates
                    continue
                if self.config.checkpoint_every and s % self.config.checkpoint_every == 0:
                    self.save_checkpoint()
                if self.config.eval_every and s % self.config.eval_every == 0 and s < steps:
                    self.evaluate()
        except KeyboardInterrupt:
            if self.processes.main:
                self.save_checkpoint()
            raise
        self.check_finite()  # the last steps since the method's periodic check: no NaN model is saved or scored
        if self.processes.main:
            self.save_checkpoint()

    @torch.no_grad()
    def evaluate(self, ids: list[int] | None = None) -> dict:
        """PSNR and SSIM on the test views (the training views when the scene has none); also eval.json.

        Held-out views are rendered as the model is, without any per-image appearance learned for the training
        photos. `cc_psnr` and `cc_ssim` are taken after `colour_correct` (Zip-NeRF's colour-corrected metrics),
        which leaves out each held-out photo's own exposure and white balance."""
        ids = ids if ids is not None else (self.scene.test_ids or self.scene.train_ids)
        scores, start = [], time.time()
        lpips, lpips_note = self._lpips
        distances = []
        for i in ids:
            target = torch.from_numpy(self.scene.load_image(i)).to(self.device)
            image = self.render_view(i).clamp(0, 1)
            if lpips is not None:
                distances.append(lpips(image, target))
            corrected = colour_correct(image, target)
            scores.append((psnr(image, target).item(), ssim(image[None], target[None]).item(),
                           psnr(corrected, target).item(), ssim(corrected[None], target[None]).item()))
        result = {
            "step": self.step_count,
            "views": "test" if self.scene.test_ids else "train (the scene has no test views)",
            "psnr": float(np.mean([s[0] for s in scores])),
            "ssim": float(np.mean([s[1] for s in scores])),
            "cc_psnr": float(np.mean([s[2] for s in scores])),
            "cc_ssim": float(np.mean([s[3] for s in scores])),
            "lpips": float(np.mean(distances)) if lpips is not None else None,  # AlexNet, v0.1
            **({"lpips_note": lpips_note} if lpips_note else {}),
            "held_out": HELD_OUT,
            **self.eval_extras(),
            "train_seconds": round(self.train_seconds, 1),  # the steps alone, over every session of the run
            "eval_seconds": round(time.time() - start, 1),
            "eval_seconds_per_image": round((time.time() - start) / max(len(ids), 1), 3),
            "peak_memory_mb": peak_memory_mb(self.device),
        }
        write_json_atomic(eval_path(self.out), result)
        return result

    @cached_property
    def _lpips(self):
        """(the LPIPS metric, "") when its weights are on this machine, else (None, why not); looked for once."""
        from spatial.lpips import LPIPS, find_weights

        found = find_weights()
        if isinstance(found, str):
            return None, found
        try:
            return LPIPS(*found, self.device), ""
        except (OSError, RuntimeError, KeyError, ValueError) as error:
            return None, f"the LPIPS weights could not be read: {error}"

    def checkpoint_path(self) -> Path:
        return checkpoint_path(self.out, self.step_count)

    def save_checkpoint(self) -> Path:
        """Write the method's state with the step, the training time and the config; keep the last two."""
        payload = {**self.checkpoint_state(), "step": self.step_count, "elapsed": self.train_seconds,
                   "config": asdict(self.config)}
        path = self.checkpoint_path()
        write_checkpoint(payload, path)
        prune_checkpoints(self.out)
        return path

    def read_checkpoint(self, path: Path) -> dict:
        """The checkpoint's payload (read safely: see spatial.training.checkpoint), its step and elapsed time checked;
        the run's training time goes on from it."""
        payload = read_checkpoint(path)
        check_step(path, payload)
        self.train_seconds = float(payload.get("elapsed", 0.0))
        return payload


COLOUR_CORRECTED = ("cc_psnr and cc_ssim after the least-squares affine colour map of each render onto its photo "
                    "(Zip-NeRF's colour-corrected metrics)")
HELD_OUT = "rendered without per-image appearance; " + COLOUR_CORRECTED


def held_out_protocol(appearance: str | None, exposure: bool, follows_exposure: bool = False) -> str:
    """How held-out photos are rendered, for eval.json: `appearance` None (the model learns none per image), "nearest"
    or "mean"; `exposure`: at each photo's recorded exposure; `follows_exposure`: with the learned appearance's
    line over log exposure (spatial/splats/appearance.py)."""
    how = {None: "rendered without per-image appearance",
           "nearest": "rendered with the appearance learned for the training photo taken nearest it (by camera "
                      "position)",
           "mean": "rendered with the training photos' mean appearance (the world's own colours)"}[appearance]
    if exposure:
        how += ", at its recorded exposure relative to the training photos' (exposures.json, from EXIF)"
    if exposure and follows_exposure and appearance == "mean":
        how += ", with the part of the learned appearance that follows exposure over the training photos"
    return how + "; " + COLOUR_CORRECTED


def capture_warnings(images: list[torch.Tensor], names: list[str]) -> list[str]:
    """What would make a capture train badly, said before training: images that are nearly one colour
    (lens cap, black frames), or a set of images that are all the same picture (a still camera)."""
    problems = []
    rgb = [img[..., :3].float() for img in images]  # [H, W, 3] each, in 0-1
    flat = [names[i] for i, img in enumerate(rgb) if float(img.std()) < 2 / 255]
    if flat:
        problems.append(f"{len(flat)} of {len(rgb)} training images are nearly one colour (first: {flat[0]}); "
                        "they teach the model nothing: remove them, or check the capture")
    if len(rgb) > 1:
        small = [torch.nn.functional.interpolate(img.permute(2, 0, 1)[None], size=(32, 32), mode="area")[0].cpu()
                 for img in rgb]
        if all(float((x - small[0]).abs().max()) < 2 / 255 for x in small[1:]):
            problems.append(f"all {len(rgb)} training images show the same picture; a 3D model needs views "
                            "from different positions")
    return problems


def tensors_to(value, device):
    """`value` (tensors in nested dicts and lists, e.g. a strategy's statistics) with every tensor on `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: tensors_to(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(tensors_to(v, device) for v in value)
    return value


def generator_state(generator: torch.Generator) -> dict:
    """A random stream's state for a checkpoint, with the device type it belongs to."""
    return {"device": generator.device.type, "state": generator.get_state()}


def load_generator_state(generator: torch.Generator, saved, fallback_seed: int) -> None:
    """Restore `saved` (from `generator_state`, or a bare CPU state of older checkpoints). A state of another
    device type cannot be loaded (CPU and CUDA streams differ), so a run resumed on another device is
    reseeded with `fallback_seed` instead: it continues correctly, but not bit for bit."""
    if isinstance(saved, torch.Tensor):
        saved = {"device": "cpu", "state": saved}
    if saved["device"] == generator.device.type:
        generator.set_state(saved["state"])
    else:
        generator.manual_seed(fallback_seed)


AUTO_SIDE = {"cuda": 1600, "cpu": 720}
"""Longest side of the training images, in pixels, that `downscale=None` (auto) brings each device type's
images to at most, by the smallest power of two: nerfstudio's 1600 on a GPU; 720 elsewhere, where a step's time
grows with the pixels (phone photos, imported at up to 1600 px, and 1080p video frames train at 1/4, the size
the `capture` preset finishes within 600 s at on 2 cores; at full size each step takes 12x as long)."""


def auto_downscale(scene: Scene, device: torch.device) -> int:
    """The smallest power of two that brings the scene's longest image side to `AUTO_SIDE` or less."""
    side = int(max(scene.cameras.width.max(), scene.cameras.height.max()))
    limit = AUTO_SIDE["cuda" if device.type == "cuda" else "cpu"]
    factor = 1
    while side > limit * factor:
        factor *= 2
    return factor


def downscale_note(scene: Scene, factor: int) -> str:
    w, h = int(scene.cameras.width.max()), int(scene.cameras.height.max())
    small = scene.cameras.downscaled(factor)
    return (f"training on images downscaled by {factor} ({int(small.width.max())}x{int(small.height.max())}, from "
            f"{w}x{h}): --downscale 1 trains at full size, on {factor * factor}x the pixels per step")
