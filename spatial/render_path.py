"""Rendering a model along a camera path into a video or a folder of frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from spatial.camera_path import CameraPath
from spatial.colormap import colorize_depth
from spatial.errors import SpatialError
from spatial.render import RenderOutput
from spatial.rigs import Rig
from spatial.trained import TrainedModel
from spatial.video_out import VIDEO_SUFFIXES, write_frames, write_video

Output = Literal["rgb", "depth", "alpha"]


def path_frames(model: TrainedModel, path: CameraPath, output: Output = "rgb",
                on_frame: Callable[[int], None] | None = None, rig: Rig | None = None) -> Iterator[np.ndarray]:
    """`[H, W, 3]` uint8 frames of `model` along `path`: colour, colour-mapped depth, or alpha, each made by
    `rig` (spatial/rigs.py; default the path's own pinhole camera) from the path's camera at that frame."""
    rig = rig or Rig()
    cameras = path.cameras()
    near = far = None
    if output == "depth":  # one depth range for the whole video, from a few frames, so colours hold still
        sample = np.linspace(0, len(cameras) - 1, min(8, len(cameras))).round().astype(int).tolist()
        outs = [rig.render(model, cameras[i]) for i in sample]
        values = torch.cat([o.depth[o.alpha > 0.5] for o in outs])
        if values.numel():
            near, far = float(torch.quantile(values, 0.01)), float(torch.quantile(values, 0.99))
    for i in range(len(cameras)):
        out = rig.render(model, cameras[i])
        if on_frame is not None:
            on_frame(i)
        yield frame_image(out, output, near, far)


def frame_image(out: RenderOutput, output: Output = "rgb", near: float | None = None,
                far: float | None = None) -> np.ndarray:
    """The first camera of a render as `[H, W, 3]` uint8: colour, colour-mapped depth, or alpha."""
    if output == "rgb":
        image = out.rgb[0]
    elif output == "depth":
        image = colorize_depth(out.depth[0].cpu(), out.alpha[0].cpu(), near, far)
    else:
        image = out.alpha[0].expand(-1, -1, 3)
    return (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def render_camera_path(model: TrainedModel, path: CameraPath, out: Path, output: Output = "rgb",
                       on_frame: Callable[[int], None] | None = None, rig: Rig | None = None) -> int:
    """Render `path` to `out`: a video when it ends in .mp4/.mov/.mkv (labelled for players as the rig's stereo
    or panorama), else a folder of PNG frames."""
    if len(path) < 2:
        raise SpatialError(f"a camera path needs at least two cameras; this one has {len(path)}")
    rig = rig or Rig()
    frames = path_frames(model, path, output, on_frame, rig)
    out = Path(out)
    if out.suffix.lower() in VIDEO_SUFFIXES:
        return write_video(frames, out, path.fps, label=rig.label)
    if out.suffix:
        raise SpatialError(f"{out}: unknown output type {out.suffix!r}; use a video ({', '.join(VIDEO_SUFFIXES)}) "
                           "or a folder name for PNG frames")
    return write_frames(frames, out)
