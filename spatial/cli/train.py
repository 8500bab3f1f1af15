"""`spatial train splat`: train Gaussian splats on a scene, evaluate them and export a PLY."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro
from rich.console import Console

from spatial.cli.ports import is_loopback
from spatial.splats.trainer import SplatTrainConfig
from spatial.training import LiveViewerOptions
from spatial.training import run_training as train_loop

PresetName = Literal["auto", "default", "cpu", "mcmc"]


def preset_config(name: str) -> SplatTrainConfig:
    """The splat preset's config: `auto` is `default` on a CUDA machine and `cpu` elsewhere."""
    from spatial.configs.splat import PRESETS

    return choose_preset(PRESETS, name)


def choose_preset(presets: dict, name: str):
    """A copy of `presets[name]`'s config; `auto` (or an unknown name, which tyro then reports with the
    valid ones) is `default` on a CUDA machine and `cpu` elsewhere."""
    import copy

    import torch

    if name == "auto" or name not in presets:
        name = "default" if torch.cuda.is_available() else "cpu"
    return copy.deepcopy(presets[name][1])


@dataclass
class ViewerFlags:
    host: str = "127.0.0.1"
    """Address the live viewer serves on (the default is reachable from this machine only)."""
    port: int = 7007
    """Port of the live viewer."""
    refresh_seconds: float = 5.0
    """Seconds between sending the model to the browser (sending costs training time; see
    scripts/bench_viewer_overhead.py)."""
    keep_open: bool = True
    """After training, keep serving the viewer until Ctrl-C."""

    def options(self, enabled: bool) -> LiveViewerOptions | None:
        if not enabled:
            return None
        if not is_loopback(self.host):
            Console().print(f"[yellow]warning:[/] serving the viewer on {self.host}: anyone who can reach this "
                            "machine can watch the training")
        return LiveViewerOptions(self.host, self.port, self.refresh_seconds, self.keep_open)


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
    viewer: bool = False
    """Serve the browser viewer while training: the splats refresh every few seconds, with pause/resume."""
    viewer_options: Annotated[ViewerFlags, tyro.conf.arg(name="viewer")] = field(default_factory=lambda: ViewerFlags())
    """Where and how the live viewer serves (with --viewer)."""
    config: Annotated[SplatTrainConfig, tyro.conf.arg(name="")] = field(
        default_factory=lambda: preset_config(_selected_preset))
    """Training settings (their defaults come from --preset)."""

    def main(self) -> None:
        run_training(self.scene, self.out or Path("outputs") / self.scene.resolve().name / "splat",
                     self.config, self.resume, preset=self.preset, viewer=self.viewer_options.options(self.viewer))


def run_training(scene_path: Path, out: Path, config: SplatTrainConfig, resume: bool, preset: str = "",
                 viewer: LiveViewerOptions | None = None) -> dict:
    """Train splats on a scene (see `spatial.training.run_training`); returns the evaluation."""
    def make_trainer():
        import torch

        from spatial.io import load_scene
        from spatial.splats.trainer import SplatTrainer

        scene = load_scene(scene_path)
        torch.manual_seed(config.seed)
        trainer = SplatTrainer(scene, config, out)
        if scene.points.shape[0] == 0:
            Console().print(f"[yellow]note:[/] {scene.root} has no sparse points; starting from "
                            f"{config.random_init_points:,} Gaussians at random within the camera bounds")
        return trainer

    return train_loop(make_trainer, "spatial train splat", scene_path, out, config, config.step.steps, resume,
                      preset, viewer)


_selected_preset = "auto"


def select_preset(args: list[str]) -> None:
    """Let the --preset found in `args` supply the defaults of every other training option."""
    global _selected_preset
    for i, arg in enumerate(args):
        if arg == "--preset" and i + 1 < len(args):
            _selected_preset = args[i + 1]
        elif arg.startswith("--preset="):
            _selected_preset = arg.split("=", 1)[1]


def selected_preset() -> str:
    return _selected_preset
