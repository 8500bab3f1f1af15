"""Trained splats as `spatial.runs.load_model` returns them: a `TrainedModel` over raw parameters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.render import RenderOptions, RenderOutput
from spatial.splats.model import render_splats, sh_degree_of
from spatial.trained import FILE_BACKGROUND, TrainedModel


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
        with torch.no_grad():
            for i in range(len(cameras)):
                cam = cameras[i]
                w, h = int(cam.width[0]), int(cam.height[0])
                yield render_splats(params, cam.world_to_cam.to(device), cam.K.to(device), w, h, self.sh_degree,
                                    bg.to(device), options)


def checked_params(path: Path, params) -> dict[str, Tensor]:
    """A checkpoint's splat parameters, refused unless every one is there with shapes that agree."""
    from spatial.errors import file_error
    from spatial.splats.model import PARAM_NAMES, check_splats

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
