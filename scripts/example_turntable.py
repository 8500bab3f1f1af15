"""Example: a turntable video of a trained model, with the Python API.

    python scripts/example_turntable.py outputs/demo --out turntable.mp4

Loads the run (its latest checkpoint and the scene it was trained on), makes one turn around the
subject of the training cameras a little higher than they were, renders colour and depth side by
side, and writes an H.264 mp4. Everything used here is in `spatial`'s public API.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import tyro

import spatial
from spatial.colormap import colorize_depth
from spatial.video_out import write_video


def main(run: tyro.conf.Positional[Path], out: Path = Path("turntable.mp4"), frames: int = 90, width: int = 480,
         fps: float = 30.0, raise_camera: float = 0.5) -> None:
    """Render a turntable of RUN (a training run folder or checkpoint) to OUT.

    Args:
        run: Training run folder or checkpoint written by `spatial train`.
        out: Output video (.mp4).
        frames: Frames in one turn.
        width: Width of each half (colour, depth) in pixels; the height keeps the training aspect ratio.
        fps: Frames per second.
        raise_camera: How much higher than the training cameras to fly, in scene units.
    """
    model = spatial.load_model(run)
    cameras = model.training_cameras()
    height = round(width * int(cameras.height[0]) / int(cameras.width[0]))
    path = spatial.orbit_path(cameras, frames=frames, width=width, height=height, fps=fps,
                              height_offset=raise_camera)

    def side_by_side():
        for out_ in model.render_frames(path.cameras()):
            rgb = out_.rgb[0].clamp(0, 1)
            depth = colorize_depth(out_.depth[0], out_.alpha[0])
            yield (torch.cat([rgb, depth], dim=1).numpy() * 255 + 0.5).astype(np.uint8)

    count = write_video(side_by_side(), out, fps)
    print(f"wrote {count} frames of {model.count:,} Gaussians to {out}")


if __name__ == "__main__":
    tyro.cli(main)
