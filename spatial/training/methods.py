"""The registry of training methods: one line per method, naming the module that describes it.

    method = get_method("splat")
    config = method.preset_config("cpu")               # a copy of the preset's config dataclass
    trainer = method.trainer(scene, config, out)       # a spatial.training.trainer.TrainerBase
    model = method.load(checkpoint, payload, device)   # a spatial.trained.TrainedModel

`spatial train METHOD`, `load_model` and the tests all read this table, so a new method is a package
with a `METHOD = Method(...)`, a presets module in configs/ with a `PRESETS` table, and one line here naming
both. The method's package never imports its presets (configs/ imports the method's config types, one way).
Modules are imported on first use: `import spatial` stays light.
"""

from __future__ import annotations

import copy
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spatial.errors import SpatialError

METHODS: dict[str, tuple[str, str]] = {  # name -> (module with METHOD, module with PRESETS)
    "splat": ("spatial.splats.method", "spatial.configs.splat"),  # 3D Gaussian Splatting
    "nerf": ("spatial.nerf.method", "spatial.configs.nerf"),  # a nerfacto-class NeRF
}


@dataclass(frozen=True)
class Method:
    name: str
    summary: str  # one line for `spatial train --help`
    config_type: type  # the config dataclass; its field docstrings are the command's --help
    trainer: Callable  # (scene, config, out) -> TrainerBase
    load: Callable  # (checkpoint path, checkpoint payload, torch.device) -> TrainedModel
    steps: Callable[[Any], int]  # a config's total number of steps
    presets: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (one line, config), from get_method
    gpu_preset: str = "default"  # what `--preset auto` picks with CUDA ...
    cpu_preset: str = "cpu"  # ... and without
    capture_preset: str | None = None  # ... and without, for a scene `spatial process` made from photos
    gpu_capture_preset: str | None = None  # ... and with CUDA, for such a scene
    video_preset: str | None = None  # ... and without CUDA, for a video's frames made into a scene (None: cpu_preset)

    def preset_name(self, name: str, scene: Path | None = None) -> str:
        """`auto` (or an unknown name, which the command line then reports with the valid ones): for photos made
        into a scene by `spatial process` (`scene`, when given) the capture preset of the device; for a video's
        frames without CUDA the video preset where the method has one; else the device's preset (the GPU one on a
        CUDA machine, the CPU one elsewhere).

        A video's frames get no per-frame appearance: they record no exposure, and a per-frame appearance learned
        without it predicts a held-out frame's colour worse than view-dependent colour does, which learns the
        neighbouring frames' exposure (scripts/results/real_captures*.txt: on the phone-style facade video, `cpu`
        35.6 dB held out against `capture` 29.5 dB, the same within 0.2 dB after colour correction)."""
        if name == "auto" or name not in self.presets:
            import torch

            gpu = torch.cuda.is_available()
            capture = self.gpu_capture_preset if gpu else self.capture_preset
            source = capture_source(scene) if scene is not None else None
            if capture and source == "photos":
                return capture
            if self.video_preset and not gpu and source == "video":
                return self.video_preset
            return self.gpu_preset if gpu else self.cpu_preset
        return name

    def preset_config(self, name: str = "auto", scene: Path | None = None):
        """A copy of the preset's config, safe to change."""
        return copy.deepcopy(self.presets[self.preset_name(name, scene)][1])


def capture_source(scene: Path) -> str | None:
    """"photos" or "video" when `spatial process` made the scene folder from them (its manifest.json says so),
    else None."""
    import json

    try:
        manifest = json.loads((Path(scene) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    source = manifest.get("source") if isinstance(manifest, dict) else None
    if not isinstance(source, dict):
        return None
    return "photos" if "photos" in source else "video" if "video" in source else None


@functools.cache
def get_method(name: str) -> Method:
    """The method registered as `name`, with its presets."""
    if name not in METHODS:
        raise SpatialError(f"unknown training method {name!r}; choose from {', '.join(METHODS)}")
    module, presets = METHODS[name]
    method = importlib.import_module(module).METHOD
    assert method.name == name, f"{module} describes {method.name!r}, registered as {name!r}"
    return replace(method, presets=importlib.import_module(presets).PRESETS)


def method_of_checkpoint(path: Path, payload: dict) -> Method:
    """The method a checkpoint's payload names (checkpoints from before it was recorded are splats)."""
    from spatial.errors import file_error

    name = payload.get("method", "splat")
    if not isinstance(name, str) or name not in METHODS:
        raise file_error(path, f"holds a model of unknown method {name!r}; this version knows "
                               f"{', '.join(METHODS)}")
    return get_method(name)
