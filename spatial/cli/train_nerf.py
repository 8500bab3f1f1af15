"""`spatial train nerf`: train a NeRF (hash grids, proposal sampling) on a scene and evaluate it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from spatial.cli.train import ViewerFlags, choose_preset, selected_preset
from spatial.nerf.trainer import NerfTrainConfig
from spatial.training import LiveViewerOptions
from spatial.training import run_training as train_loop

PresetName = Literal["auto", "default", "cpu", "tiny"]


def preset_config(name: str) -> NerfTrainConfig:
    """The NeRF preset's config: `auto` is `default` on a CUDA machine and `cpu` elsewhere."""
    from spatial.configs.nerf import PRESETS

    return choose_preset(PRESETS, name)


@dataclass
class TrainNerf:
    """Train a NeRF (nerfacto-style: hash grids, proposal sampling) on a scene; writes checkpoints and eval.json."""

    scene: tyro.conf.Positional[Path]
    """Scene folder (COLMAP, nerfstudio or Blender layout) or a transforms.json file."""
    preset: PresetName = "auto"
    """Named settings from configs/nerf.py: default (GPU), cpu (sized for a 2-core CPU), tiny (smoke
    tests); auto picks default with CUDA and cpu without. Options given here override the preset's values."""
    out: Path | None = None
    """Run folder (default: outputs/SCENE_NAME/nerf)."""
    resume: bool = False
    """Continue the run in --out from its latest checkpoint."""
    viewer: bool = False
    """Serve the browser viewer while training: server-side renders of the NeRF, with pause/resume."""
    viewer_options: Annotated[ViewerFlags, tyro.conf.arg(name="viewer")] = field(default_factory=lambda: ViewerFlags())
    """Where and how the live viewer serves (with --viewer)."""
    config: Annotated[NerfTrainConfig, tyro.conf.arg(name="")] = field(
        default_factory=lambda: preset_config(selected_preset()))
    """Training settings (their defaults come from --preset)."""

    def main(self) -> None:
        run_training(self.scene, self.out or Path("outputs") / self.scene.resolve().name / "nerf",
                     self.config, self.resume, preset=self.preset, viewer=self.viewer_options.options(self.viewer))


def run_training(scene_path: Path, out: Path, config: NerfTrainConfig, resume: bool, preset: str = "",
                 viewer: LiveViewerOptions | None = None) -> dict:
    """Train a NeRF on a scene (see `spatial.training.run_training`); returns the evaluation."""
    def make_trainer():
        from spatial.io import load_scene
        from spatial.nerf.trainer import NerfTrainer

        return NerfTrainer(load_scene(scene_path), config, out)

    return train_loop(make_trainer, "spatial train nerf", scene_path, out, config, config.steps, resume, preset,
                      viewer)
