"""`spatial demo`: the README's main job, end to end on a built-in scene."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console


@dataclass
class Demo:
    """Render a built-in scene (cached), train splats on it, evaluate them on held-out views and export a PLY."""

    scene: Literal["orbit", "facade"] = "orbit"
    """Built-in scene to use."""
    size: Literal["test", "default", "large"] = "default"
    """Scene size preset (scenes/config.py)."""
    preset: Literal["auto", "default", "cpu", "mcmc"] = "auto"
    """Training preset (configs/splat.py); auto is cpu without CUDA and default with it."""
    steps: int | None = None
    """Training steps (default: the preset's)."""
    out: Path = Path("outputs/demo")
    """Run folder; an existing run there is replaced."""

    def main(self) -> None:
        import shutil

        from spatial.cli.scene import make_with_progress, summary_table
        from spatial.io import load_scene
        from spatial.training.loop import run_training
        from spatial.training.methods import get_method

        console = Console()
        path = make_with_progress(self.scene, self.size)
        console.print(summary_table(load_scene(path), f"built-in scene '{self.scene}' ({self.size})"))
        config = get_method("splat").preset_config(self.preset)
        if self.steps is not None:
            config.step.steps = self.steps
        shutil.rmtree(self.out / "checkpoints", ignore_errors=True)
        result = run_training("splat", path, self.out, config, resume=False, preset=self.preset)
        console.print(f"\n[bold]test PSNR {result['psnr']:.2f} dB[/] on {self.scene} after "
                      f"{result['train_seconds']:.0f} s of training ({result['gaussians']:,} Gaussians)")
