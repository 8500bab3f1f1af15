"""`TrainedModel`: what every trained model offers, whatever the method (splats, NeRF).

`spatial.runs.load_model` returns one; `spatial render`, mesh export, camera paths and the viewer
take any. A method's model (`spatial.splats.trained.SplatModel`, `spatial.nerf.trained.TrainedNerf`)
supplies `render_frames` and `summary`; the rest is here. This module depends on nothing else in
`spatial` at import time, so any part of the package can name the type.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

    from spatial.cameras import Cameras
    from spatial.render import RenderOptions, RenderOutput
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
        from spatial.errors import SpatialError
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
        import torch

        from spatial.render import RenderOutput

        if len(set(cameras.width.tolist())) > 1 or len(set(cameras.height.tolist())) > 1:
            raise ValueError("render() needs cameras of one size; use render_frames() for mixed sizes")
        frames = list(self.render_frames(cameras, background, options))
        return RenderOutput(*(torch.cat([getattr(f, name) for f in frames]) for name in
                              ("rgb", "alpha", "depth", "means2d", "radii", "depths")))
