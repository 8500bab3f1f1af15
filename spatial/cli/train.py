"""`spatial train METHOD`: one command for every method in spatial.training.methods' registry.

The command's class is built once the preset is known, so `--preset NAME` supplies the default of
every other training option before tyro parses them (and `--help` shows the preset's values):

    spatial train splat SCENE --preset cpu --step.steps 500
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import tyro
from rich.console import Console

from spatial.ports import is_loopback
from spatial.training.loop import LiveViewerOptions, run_training
from spatial.training.methods import METHODS, get_method


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
class TrainCommand:
    scene: tyro.conf.Positional[Path]
    """Scene folder (COLMAP, nerfstudio or Blender layout) or a transforms.json file."""
    out: Path | None = None
    """Run folder (default: outputs/SCENE_NAME/METHOD)."""
    resume: bool = False
    """Continue the run in --out from its latest checkpoint."""
    viewer: bool = False
    """Serve the browser viewer while training, with pause/resume."""
    viewer_options: Annotated[ViewerFlags, tyro.conf.arg(name="viewer")] = field(default_factory=ViewerFlags)
    """Where and how the live viewer serves (with --viewer)."""

    method: ClassVar[str]  # `preset` and `config` are added per method by `TrainLeaf.command_for`

    def main(self) -> None:
        out = self.out or Path("outputs") / self.scene.resolve().name / self.method
        preset = get_method(self.method).preset_name(self.preset, self.scene)  # what auto chose, recorded
        run_training(self.method, self.scene, out, self.config, self.resume, preset=preset,
                     viewer=self.viewer_options.options(self.viewer))


class TrainLeaf:
    """`spatial train METHOD` before its preset is known; `command_for(args)` is the dataclass tyro parses."""

    def __init__(self, method: str):
        self.method = method
        self.__doc__ = get_method(method).summary

    def command_for(self, args: list[str]) -> type:
        """The command class whose defaults are the preset's that `args` choose. `auto` may depend on the scene
        (a real capture), so the arguments are first parsed by the command as it would be without one: the
        scene is then the positional argument tyro finds, wherever it stands among the options."""
        preset, scene = "auto", None
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                first = tyro.cli(self._command(preset, None), args=[a for a in args if a not in ("-h", "--help")])
            preset, scene = first.preset, first.scene
        except SystemExit:  # bad arguments: the real parse below reports them
            pass
        return self._command(preset, scene)

    def _command(self, preset: str, scene: Path | None) -> type:
        method = get_method(self.method)
        names = ("auto", *method.presets)
        lines = "; ".join(f"{name}: {description}" for name, (description, _) in method.presets.items())
        video = (f"; {method.video_preset} for a video's frames without CUDA" if method.video_preset
                 else " (a video's frames get the former)")
        capture = (f", or {method.capture_preset} for photos made into the scene by `spatial process`{video}"
                   if method.capture_preset else "")
        preset_help = (f"Named settings from configs/{self.method}.py ({lines}); auto picks "
                       f"{method.gpu_preset} with CUDA and {method.cpu_preset} without{capture}. Options given "
                       "here override the preset's values.")
        return make_dataclass(f"Train{self.method.title()}", [
            ("preset", Annotated[Literal[names], tyro.conf.arg(help=preset_help)], field(default="auto")),
            ("config", Annotated[method.config_type, tyro.conf.arg(
                name="", help="Training settings (their defaults come from --preset).")],
             field(default_factory=lambda: method.preset_config(preset, scene))),
        ], bases=(TrainCommand,), namespace={"method": self.method, "__doc__": method.summary})


def train_commands() -> dict[str, TrainLeaf]:
    return {name: TrainLeaf(name) for name in METHODS}
