"""Trained models as files: load a training run, a checkpoint or a splat file, and render it.

    model = load_model("outputs/demo")          # a run folder, a step-*.pt checkpoint, or .ply/.splat/.spz
    out = model.render(cameras)                 # RenderOutput: rgb, alpha, depth  [C, H, W, ...]
    for frame in model.render_frames(cameras):  # one camera at a time, for long paths
        ...

A run folder is what `spatial train` writes: `config.json` (which scene, which settings),
`checkpoints/step-*.pt` and `splats.ply`. The scene is needed only for what uses the training cameras
(mesh export, default render paths); a bare splat file renders on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.errors import SpatialError, file_error
from spatial.render import RenderOptions, RenderOutput
from spatial.splats.model import render_splats, sh_degree_of

SPLAT_SUFFIXES = (".ply", ".splat", ".spz")


class TrainedModel:
    """What every trained model shares (`SplatModel` here, `TrainedNerf` in spatial.nerf.trained): the scene
    it was trained on, and rendering a batch of cameras through its `render_frames`."""

    source: Path
    scene_path: Path | None
    downscale: int

    @property
    def origin(self) -> str:
        """Where the model came from, for messages: a run's checkpoint names its step (a run still training
        gives its newest checkpoint, which may be behind what the trainer holds)."""
        source = Path(self.source)
        if source.suffix == ".pt" and source.stem.startswith("step-") and source.stem[5:].isdigit():
            return f"{source.parent.parent} at step {int(source.stem[5:]):,} ({source.name})"
        return str(source)

    def training_cameras(self) -> Cameras:
        """The cameras of the scene this model was trained on (at its training resolution)."""
        return self.scene().cameras

    def scene(self):
        from spatial.io import load_scene

        if self.scene_path is None:
            raise SpatialError(f"{self.source}: no scene is known for this model (only runs made by "
                               "`spatial train` record theirs); pass the scene folder explicitly")
        if not Path(self.scene_path).exists():
            raise SpatialError(f"{self.source}: its scene {self.scene_path} no longer exists; "
                               "pass the scene folder explicitly")
        scene = load_scene(Path(self.scene_path))
        return scene.downscaled(self.downscale) if self.downscale > 1 else scene

    def render(self, cameras: Cameras, background: Tensor | None = None,
               options: RenderOptions | None = None) -> RenderOutput:
        """Render every camera (all the same size); outputs are stacked along the first axis."""
        if len(set(cameras.width.tolist())) > 1 or len(set(cameras.height.tolist())) > 1:
            raise ValueError("render() needs cameras of one size; use render_frames() for mixed sizes")
        frames = list(self.render_frames(cameras, background, options))
        return RenderOutput(*(torch.cat([getattr(f, name) for f in frames]) for name in
                              ("rgb", "alpha", "depth", "means2d", "radii", "depths")))


@dataclass
class SplatModel(TrainedModel):
    params: dict[str, Tensor]  # raw parameters, see spatial.splats.model
    source: Path  # the file or folder it came from
    scene_path: Path | None = None  # the scene it was trained on, when known
    downscale: int = 1  # the image downscale it was trained at
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def count(self) -> int:
        return self.params["means"].shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_of(self.params)

    def summary(self) -> str:
        return f"{self.count:,} Gaussians"

    def render_frames(self, cameras: Cameras, background: Tensor | None = None,
                      options: RenderOptions | None = None) -> Iterator[RenderOutput]:
        """Render one camera at a time (so a long path never holds more than one frame)."""
        params = {k: v.detach() for k, v in self.params.items()}
        device = params["means"].device
        bg = torch.tensor(self.background, dtype=torch.float32, device=device) if background is None else background
        with torch.no_grad():
            for i in range(len(cameras)):
                cam = cameras[i]
                w, h = int(cam.width[0]), int(cam.height[0])
                yield render_splats(params, cam.world_to_cam.to(device), cam.K.to(device), w, h, self.sh_degree,
                                    bg.to(device), options)


def load_model(path: Path, device: str = "cpu"):
    """A trained model from a run folder, a checkpoint, or a .ply/.splat/.spz file: a `SplatModel`, or a
    `TrainedNerf` (spatial.nerf.trained) for NeRF runs; both render through `render` / `render_frames`.
    `device`: where its tensors go (`auto`: cuda when available, else cpu)."""
    from spatial.formats import load_splats
    from spatial.trainer_base import pick_device
    from spatial.training import latest_checkpoint

    device = pick_device(device)
    path = Path(path)
    if not path.exists():
        raise file_error(path, "not found; expected a training run folder, a checkpoint (.pt) or a splat file "
                               f"({', '.join(SPLAT_SUFFIXES)})")
    run = path if path.is_dir() else path.parent.parent if path.suffix == ".pt" else None
    if path.is_dir():
        checkpoint = latest_checkpoint(path)
        if checkpoint is None:
            hint = " (it has a splats.ply: pass that file)" if (path / "splats.ply").is_file() else ""
            raise file_error(path, "has no checkpoint (checkpoints/step-*.pt); it is not a finished or "
                                   f"interrupted training run{hint}")
        path = checkpoint
    if path.suffix == ".pt":
        payload = _read_checkpoint(path)
        if payload.get("method") == "nerf":
            from spatial.nerf.trained import load_nerf

            model = load_nerf(path, payload, device)
        else:
            model = SplatModel({k: v.float().to(device) for k, v in _checked_params(path, payload["params"]).items()},
                               path)
    elif path.suffix.lower() in SPLAT_SUFFIXES:
        model = SplatModel({k: v.to(device) for k, v in load_splats(path).items()}, path)
    else:
        raise file_error(path, f"unknown model file type {path.suffix!r}; expected a run folder, .pt, "
                               f"{', '.join(SPLAT_SUFFIXES)}")
    if run is not None and (run / "config.json").is_file():
        config = json.loads((run / "config.json").read_text())
        model.scene_path = Path(config["scene"]) if config.get("scene") else None
        model.downscale = int(config.get("config", {}).get("downscale", 1))
        model.background = _scene_background(model.scene_path)
    return model


def load_splat_model(path: Path, device: str = "cpu") -> SplatModel:
    """`load_model`, for what only splats have (splat files, centres as points): a NeRF is refused clearly."""
    model = load_model(path, device)
    if not isinstance(model, SplatModel):
        raise SpatialError(f"{path}: is a NeRF run, which has no Gaussians to write; export a mesh "
                           "(`spatial export mesh` or `density-mesh`) or depth points (`--source depth`)")
    return model


def _read_checkpoint(path: Path) -> dict:
    from spatial.checkpoint import read_checkpoint

    payload = read_checkpoint(path)
    if not ("params" in payload or payload.get("method") == "nerf"):
        raise file_error(path, "not a checkpoint written by `spatial train` (no model inside)")
    return payload


def _checked_params(path: Path, params) -> dict[str, Tensor]:
    """A checkpoint's splat parameters, refused unless every one is there with shapes that agree."""
    from spatial.splats.model import PARAM_NAMES

    if not isinstance(params, dict) or not all(isinstance(params.get(k), Tensor) for k in PARAM_NAMES):
        raise file_error(path, f"not a splat checkpoint: 'params' must hold tensors {', '.join(PARAM_NAMES)}")
    N = params["means"].shape[0] if params["means"].dim() else -1
    shapes = {"means": (N, 3), "quats": (N, 4), "scales": (N, 3), "opacities": (N,), "sh0": (N, 1, 3)}
    shN = params["shN"]
    bad = [k for k, shape in shapes.items() if tuple(params[k].shape) != shape]
    if N <= 0 or bad or shN.dim() != 3 or shN.shape[0] != N or shN.shape[2] != 3 \
            or (shN.shape[1] + 1) not in (1, 4, 9, 16) or not all(params[k].is_floating_point() for k in PARAM_NAMES):
        raise file_error(path, f"not a splat checkpoint: its parameters' shapes do not agree "
                               f"({', '.join(f'{k} {tuple(v.shape)}' for k, v in params.items() if k in PARAM_NAMES)})")
    from spatial.formats import check_splats

    return check_splats(path, {k: params[k] for k in PARAM_NAMES})


def _scene_background(scene_path: Path | None) -> tuple[float, float, float]:
    """The colour training composited transparent pixels on (white unless the scene says otherwise)."""
    if scene_path is None or not Path(scene_path).exists():
        return (1.0, 1.0, 1.0)
    try:
        from spatial.io import load_scene

        background = load_scene(Path(scene_path)).background
    except SpatialError:
        return (1.0, 1.0, 1.0)
    return tuple(background) if background is not None else (1.0, 1.0, 1.0)
