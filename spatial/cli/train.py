"""`spatial train splat`: train Gaussian splats on a scene, evaluate them and export a PLY."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from spatial.errors import SpatialError
from spatial.files import write_json_atomic
from spatial.splats.trainer import SplatTrainConfig

PresetName = Literal["auto", "default", "cpu", "mcmc"]


def preset_config(name: str) -> SplatTrainConfig:
    """The preset's config: `auto` is `default` on a CUDA machine and `cpu` elsewhere."""
    import copy

    import torch

    from configs.splat import PRESETS

    if name == "auto":
        name = "default" if torch.cuda.is_available() else "cpu"
    return copy.deepcopy(PRESETS[name][1])


@dataclass
class TrainSplat:
    """Train 3D Gaussian Splats on a scene folder; writes checkpoints, eval.json and splats.ply."""

    scene: tyro.conf.Positional[Path]
    """Scene folder (COLMAP, nerfstudio or Blender layout) or a transforms.json file."""
    preset: PresetName = "auto"
    """Named settings from configs/splat.py: default (30k steps, GPU), cpu (2k steps), mcmc; auto picks
    default with CUDA and cpu without. Options given here override the preset's values."""
    out: Path | None = None
    """Run folder (default: outputs/SCENE_NAME/splat)."""
    resume: bool = False
    """Continue the run in --out from its latest checkpoint."""
    config: Annotated[SplatTrainConfig, tyro.conf.arg(name="")] = field(
        default_factory=lambda: preset_config(_selected_preset))
    """Training settings (their defaults come from --preset)."""

    def main(self) -> None:
        run_training(self.scene, self.out or Path("outputs") / self.scene.resolve().name / "splat",
                     self.config, self.resume, preset=self.preset)


def run_training(scene_path: Path, out: Path, config: SplatTrainConfig, resume: bool, preset: str = "") -> dict:
    """Load, train (with a progress bar), evaluate and export; returns the evaluation."""
    import torch

    from spatial.io import load_scene
    from spatial.splats.ply import save_ply
    from spatial.splats.trainer import SplatTrainer, latest_checkpoint

    console = Console()
    checkpoint = latest_checkpoint(out)
    if checkpoint is not None and not resume:
        raise SpatialError(f"{out}: already holds a training run; pass --resume to continue it, "
                           "or choose another --out")
    if resume and checkpoint is None:
        raise SpatialError(f"{out}: no checkpoint to resume from (expected {out}/checkpoints/step-*.pt)")
    scene = load_scene(scene_path)
    torch.manual_seed(config.seed)
    trainer = SplatTrainer(scene, config, out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "config.json", {"scene": str(scene_path.resolve()), "preset": preset,
                                            "config": _jsonable(config)})
    if checkpoint is not None:
        trainer.load_checkpoint(checkpoint)
        console.print(f"resuming from {checkpoint} (step {trainer.state.step})")
    steps = config.step.steps
    from spatial.render import backend_for

    backend = backend_for(trainer.device, config.step.render)
    if scene.points.shape[0] == 0:
        console.print(f"[yellow]note:[/] {scene.root} has no sparse points; starting from "
                      f"{config.random_init_points:,} Gaussians at random within the camera bounds")
    console.print(f"training {len(scene.train_ids)} views of {scene.root} on {trainer.device} ({backend} rasterizer), "
                  f"{steps} steps -> {out}")
    columns = (TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    start = time.time()
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("train", total=steps, completed=trainer.state.step, stats="")

        def on_step(stats: dict) -> None:
            if trainer.state.step % 10 == 0 or trainer.state.step == steps:
                progress.update(task, completed=trainer.state.step,
                                stats=f"loss {stats['loss']:.4f}  psnr {stats['psnr']:.2f}  "
                                      f"gaussians {stats['gaussians']:,}")

        try:
            trainer.train(steps, on_step)
        except KeyboardInterrupt:
            progress.stop()
            console.print(f"\ninterrupted at step {trainer.state.step}; checkpoint saved in {out}/checkpoints. "
                          f"Continue with: spatial train splat {scene_path} --out {out} --resume")
            raise
    train_seconds = time.time() - start
    result = trainer.evaluate()
    result["train_seconds_this_session"] = round(train_seconds, 1)
    write_json_atomic(out / "eval.json", result)
    save_ply(trainer.state.params, out / "splats.ply")
    table = Table(title="evaluation", show_header=False)
    for key in ("views", "psnr", "ssim", "gaussians", "train_seconds", "peak_memory_mb"):
        value = result[key]
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"splats: [bold]{out / 'splats.ply'}[/] "
                  "(INRIA 3DGS layout: open it in SuperSplat or any 3DGS viewer)")
    return result


def _jsonable(obj):
    from dataclasses import asdict, is_dataclass

    return json.loads(json.dumps(asdict(obj) if is_dataclass(obj) else obj, default=str))


_selected_preset = "auto"


def select_preset(args: list[str]) -> None:
    """Let the --preset found in `args` supply the defaults of every other training option."""
    global _selected_preset
    for i, arg in enumerate(args):
        if arg == "--preset" and i + 1 < len(args):
            _selected_preset = args[i + 1]
        elif arg.startswith("--preset="):
            _selected_preset = arg.split("=", 1)[1]
    if _selected_preset not in PresetName.__args__:
        _selected_preset = "auto"  # tyro reports the bad choice with the list of valid ones
