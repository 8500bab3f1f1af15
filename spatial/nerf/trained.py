"""A trained NeRF as `spatial.trained.load_model` returns it: a `TrainedModel` like `SplatModel`, so
`spatial render`, mesh export and the viewer take either."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.render import RenderOptions, RenderOutput
from spatial.scene import DEFAULT_BACKGROUND
from spatial.trained import TrainedModel


@dataclass
class TrainedNerf(TrainedModel):
    model: torch.nn.Module  # spatial.nerf.model.NerfModel, in eval mode
    source: Path
    scene_path: Path | None = None
    downscale: int = 1
    background: tuple[float, float, float] = DEFAULT_BACKGROUND
    chunk: int = 8192  # rays rendered at once

    def summary(self) -> str:
        return f"a NeRF ({sum(p.numel() for p in self.model.parameters()):,} parameters)"

    def render_frames(self, cameras: Cameras, background: Tensor | None = None,
                      options: RenderOptions | None = None) -> Iterator[RenderOutput]:
        """One camera at a time; `options` (rasterizer settings) do not apply to a NeRF."""
        device = next(self.model.parameters()).device
        bg = torch.tensor(self.background, dtype=torch.float32, device=device) if background is None else background
        for i in range(len(cameras)):
            out = self.model.render_camera(cameras[i], bg, self.chunk)
            empty = out["rgb"].new_zeros(1, 0, 2)
            yield RenderOutput(out["rgb"][None], out["alpha"][None], out["depth"][None], empty,
                               empty.to(torch.int32), empty[..., 0])
