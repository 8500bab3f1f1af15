"""Trained models: `TrainedModel`, what every one offers whatever the method; `SplatModel`, the one a splat file or
a splat run is; and `load_model`, which makes one from a file.

    model = load_model("outputs/demo")          # a run folder, a step-*.pt checkpoint, or any splat file
    out = model.render(cameras)                 # RenderOutput: rgb, alpha, depth  [C, H, W, ...]
    for frame in model.render_frames(cameras):  # one camera at a time, for long paths
        ...

`spatial render`, mesh export, camera paths and the viewer take any `TrainedModel`. A method's model supplies
`render_frames` and `summary`; the rest is here. Splats live here rather than in their method's package because a
splat file is a model without a run; a NeRF's model (`spatial.nerf.trained.TrainedNerf`) lives with its method.
What a run folder holds is spatial/training/run_folder.py's; which method a checkpoint belongs to and how it
becomes a model is spatial/training/methods.py's; splat files are read through spatial/formats. The scene is
needed only for what uses the training cameras (mesh export, default render paths).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.distortion import CameraModel
from spatial.errors import SpatialError, file_error
from spatial.render import RenderOptions, RenderOutput
from spatial.render.projection import may_be_seen
from spatial.splats.model import PARAM_NAMES, check_splats, render_splats, sh_degree_of

if TYPE_CHECKING:
    from spatial.scene import Scene

# What a bare splat file renders on (it records no background): black, as SuperSplat and the 3DGS viewers
# show it. A model from a training run renders on the background its run trained with (config.json).
FILE_BACKGROUND = (0.0, 0.0, 0.0)


class TrainedModel:
    source: Path  # the run's checkpoint or the file it came from
    scene_path: Path | None  # the scene it was trained on, when known
    downscale: int  # the image downscale it was trained at
    background: tuple[float, float, float]  # RGB in 0-1 behind what the model leaves transparent

    # ---- what a method supplies -------------------------------------------------------------
    def render_frames(self, cameras: Cameras, background: Tensor | None = None,
                      options: RenderOptions | None = None) -> Iterator[RenderOutput]:
        """One `RenderOutput` (batch of 1) per camera, so a long path never holds more than one frame."""
        raise NotImplementedError

    def summary(self) -> str:  # what it is, for messages: "120,000 Gaussians", "a NeRF (...)"
        raise NotImplementedError

    def splat_params(self) -> dict[str, Tensor] | None:
        """The model as raw splat parameters (spatial.splats.model), for the files splats are written to; None
        for a model that is not made of splats."""
        return None

    # ---- shared -----------------------------------------------------------------------------
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

    def scene(self) -> Scene:
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
    background: tuple[float, float, float] = FILE_BACKGROUND

    @property
    def count(self) -> int:
        return self.params["means"].shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_of(self.params)

    def summary(self) -> str:
        return f"{self.count:,} Gaussians"

    def splat_params(self) -> dict[str, Tensor]:
        return self.params

    def render_frames(self, cameras: Cameras, background: Tensor | None = None,
                      options: RenderOptions | None = None) -> Iterator[RenderOutput]:
        """Render one camera at a time (so a long path never holds more than one frame)."""
        params = {k: v.detach() for k, v in self.params.items()}
        device = params["means"].device
        bg = torch.tensor(self.background, dtype=torch.float32, device=device) if background is None else background
        options = options or RenderOptions()
        panorama = cameras.model == CameraModel.EQUIRECTANGULAR
        options = replace(options, camera_model="equirect" if panorama else "pinhole")
        max_scales = params["scales"].max(-1).values.exp()  # [N]
        for i in range(len(cameras)):
            cam = cameras[i]
            w, h = int(cam.width[0]), int(cam.height[0])
            world_to_cam, K = cam.world_to_cam.to(device), cam.K.to(device)
            # grad mode is switched off around each render, never across a `yield`: a generator suspended inside
            # `no_grad` would leave the caller's thread without gradients until it is garbage collected
            with torch.no_grad():
                if panorama:  # it sees all around
                    out = render_splats(params, world_to_cam, K, w, h, self.sh_degree, bg.to(device), options)
                else:  # only what the camera may see is projected: a close-up costs what its part of the world
                    # costs; the per-Gaussian outputs keep the world's order
                    seen = may_be_seen(params["means"], max_scales, world_to_cam, K, w, h, options.near,
                                       options.eps2d)[0].nonzero()[:, 0]
                    out = render_splats({k: v[seen] for k, v in params.items()}, world_to_cam, K, w, h,
                                        self.sh_degree, bg.to(device), options)
                    out.means2d, out.radii, out.depths = (
                        x.new_zeros(1, self.count, *x.shape[2:]).index_copy_(1, seen, x)
                        for x in (out.means2d, out.radii, out.depths))
            yield out


def checked_params(path: Path, params) -> dict[str, Tensor]:
    """A checkpoint's splat parameters, refused unless every one is there with shapes that agree."""
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
    return check_splats(path, {k: params[k] for k in PARAM_NAMES})


def load_splat_checkpoint(path: Path, payload: dict, device: torch.device) -> SplatModel:
    """A `SplatModel` from a splat checkpoint's contents (see `SplatTrainer.checkpoint_state`)."""
    return SplatModel({k: v.float().to(device) for k, v in checked_params(path, payload.get("params")).items()},
                      path)


def load_model(path: Path, device: str = "cpu", spz_axes: str = "rub") -> TrainedModel:
    """A trained model from a run folder, a checkpoint, or a splat file (any suffix spatial.formats reads):
    a `SplatModel`, a `TrainedNerf` (spatial.nerf.trained), or whatever the run's method loads; each renders
    through `render` / `render_frames`. `device`: where its tensors go (`auto`: cuda when available, else cpu);
    `spz_axes`: an SPZ file's axes (see `spatial.formats.load_splats`)."""
    from spatial.device import pick_device
    from spatial.formats import load_splats, splat_ending, splat_suffixes
    from spatial.training import run_folder
    from spatial.training.checkpoint import read_checkpoint
    from spatial.training.methods import method_of_checkpoint

    device = pick_device(device)
    path = Path(path)
    kinds = f"a training run folder, a checkpoint (.pt) or a splat file ({', '.join(splat_suffixes())})"
    if not path.exists():
        raise file_error(path, f"not found; expected {kinds}")
    if path.is_dir():
        checkpoint = run_folder.latest_checkpoint(path)
        if checkpoint is None:
            hint = " (it has a splats.ply: pass that file)" if (path / "splats.ply").is_file() else ""
            raise file_error(path, "has no checkpoint (checkpoints/step-*.pt); it is not a finished or "
                                   f"interrupted training run{hint}")
        path = checkpoint
    if path.suffix == ".pt":
        payload = read_checkpoint(path)
        model = method_of_checkpoint(path, payload).load(path, payload, device)
        info = run_folder.read_run_info(run_folder.run_of(path))
        if info is not None:
            model.scene_path, model.downscale = info.scene, info.downscale
            model.background = info.background or _scene_background(info.scene)
        return model
    if splat_ending(path) is not None:
        return SplatModel({k: v.to(device) for k, v in load_splats(path, spz_axes).items()}, path)
    raise file_error(path, f"unknown model file type {path.suffix!r}; expected {kinds}")


def load_splat_model(path: Path, device: str = "cpu", spz_axes: str = "rub") -> SplatModel:
    """`load_model`, for what only splats have (splat files, centres as points): a NeRF is refused clearly."""
    model = load_model(path, device, spz_axes)
    if not isinstance(model, SplatModel):
        raise SpatialError(f"{path}: is a NeRF run, which has no Gaussians to write; export a mesh "
                           "(`spatial export mesh` or `density-mesh`) or depth points (`--source depth`)")
    return model


def _scene_background(scene_path: Path | None) -> tuple[float, float, float]:
    """For runs whose config.json predates its `background`: the scene's, read from the scene folder."""
    from spatial.scene import DEFAULT_BACKGROUND

    if scene_path is None or not Path(scene_path).exists():
        return DEFAULT_BACKGROUND
    try:
        from spatial.io import load_scene

        return load_scene(Path(scene_path)).background_rgb
    except SpatialError:
        return DEFAULT_BACKGROUND
