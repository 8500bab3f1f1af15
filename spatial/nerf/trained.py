"""A trained NeRF as `spatial.runs.load_model` returns it: the same rendering API as `SplatModel`,
so `spatial render`, mesh export and the viewer take either."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.errors import SpatialError, file_error
from spatial.render import RenderOptions, RenderOutput


@dataclass
class TrainedNerf:
    model: torch.nn.Module  # spatial.nerf.model.NerfModel, in eval mode
    source: Path
    scene_path: Path | None = None
    downscale: int = 1
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    chunk: int = 8192  # rays rendered at once

    def summary(self) -> str:
        return f"a NeRF ({sum(p.numel() for p in self.model.parameters()):,} parameters)"

    def training_cameras(self) -> Cameras:
        return self.scene().cameras

    def scene(self):
        from spatial.io import load_scene

        if self.scene_path is None or not Path(self.scene_path).exists():
            raise SpatialError(f"{self.source}: the scene it was trained on ({self.scene_path}) is not available; "
                               "pass the scene folder explicitly")
        scene = load_scene(Path(self.scene_path))
        return scene.downscaled(self.downscale) if self.downscale > 1 else scene

    def render_frames(self, cameras: Cameras, background: Tensor | None = None,
                      options: RenderOptions | None = None) -> Iterator[RenderOutput]:
        """One camera at a time; `options` (rasterizer settings) do not apply to a NeRF."""
        bg = torch.tensor(self.background, dtype=torch.float32) if background is None else background
        for i in range(len(cameras)):
            out = self.model.render_camera(cameras[i], bg, self.chunk)
            empty = out["rgb"].new_zeros(1, 0, 2)
            yield RenderOutput(out["rgb"][None], out["alpha"][None], out["depth"][None], empty,
                               empty.to(torch.int32), empty[..., 0])

    def render(self, cameras: Cameras, background: Tensor | None = None,
               options: RenderOptions | None = None) -> RenderOutput:
        frames = list(self.render_frames(cameras, background, options))
        return RenderOutput(*(torch.cat([getattr(f, name) for f in frames]) for name in
                              ("rgb", "alpha", "depth", "means2d", "radii", "depths")))


def load_nerf(checkpoint: Path, payload: dict, device: str = "cpu") -> TrainedNerf:
    """A `TrainedNerf` from a NeRF checkpoint's contents (see `NerfTrainer.save_checkpoint`)."""
    from spatial.nerf.field import SpaceMap
    from spatial.nerf.model import ModelConfig, NerfModel
    from spatial.nerf.trainer import NerfTrainConfig
    from spatial.training import config_from_dict

    try:
        config: NerfTrainConfig = config_from_dict(NerfTrainConfig, payload["config"])
        model = NerfModel(SpaceMap.from_state(payload["space"]), config.model, payload["num_images"])
        model.load_state_dict(payload["model"])
    except (KeyError, RuntimeError, TypeError) as e:
        raise file_error(checkpoint, f"not a readable NeRF checkpoint ({e})") from None
    assert isinstance(config.model, ModelConfig)
    return TrainedNerf(model.to(device).eval(), checkpoint, downscale=config.downscale)
