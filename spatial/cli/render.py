"""`spatial render`: render a trained model along a camera path to a video or PNG frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro
from rich.console import Console

from spatial.progress import progress_bar


@dataclass
class Render:
    """Render a trained model along a camera path (an orbit, a spiral, or a camera-path JSON) to an mp4 or PNGs."""

    model: tyro.conf.Positional[Path]
    """Training run folder, checkpoint (.pt), or splat file (any format `spatial export` writes)."""
    path: str = "auto"
    """'orbit' (one turn around the subject of the training cameras), 'spiral' (around the mean
    training view, for forward-facing captures), 'auto' (orbit when the training cameras surround
    the subject, else spiral: only where the cameras looked), or a camera-path JSON (nerfstudio's
    layout, or one saved by `spatial view`)."""
    out: Path = Path("render.mp4")
    """A video file (.mp4, .mov, .mkv; H.264) or a folder name for PNG frames."""
    output: Literal["rgb", "depth", "alpha"] = "rgb"
    """What to draw: colour, expected depth (turbo colour map, near blue, far red; in a panorama the distance along
    each ray) or accumulated opacity."""
    camera: Literal["pinhole", "stereo-sbs", "stereo-tb", "equirect", "vr180"] = "pinhole"
    """What each frame is, from the path's camera at that frame: 'pinhole' (a flat picture); 'stereo-sbs' /
    'stereo-tb' (left and right eyes --ipd apart along the camera's x axis, parallel axes, side by side or left on
    top; --width/--height are each eye's); 'equirect' (a 360x180 panorama, 2:1, centred on the camera's heading and
    levelled to the scene's up); 'vr180' (a 180x180 half-panorama per eye, side by side; --width/--height are each
    eye's, square by default). mp4/mov videos are labelled for players (stereo mode, projection), so headsets and
    YouTube play them as 3D or 360 without a setting."""
    ipd: float | None = None
    """Distance between the eyes for the stereo cameras, in scene units (default: 1/30 of the median depth seen
    from eight of the path's cameras, the stereographers' rule for comfortable depth; printed)."""
    frames: int = 120
    """Number of frames for 'orbit' and 'spiral' (a JSON path has its own)."""
    fps: float | None = None
    """Frames per second (default: the JSON path's, else 30)."""
    width: int | None = None
    """Image width (default: the JSON path's, else the training images'; a panorama: twice its height)."""
    height: int | None = None
    """Image height (default: the JSON path's, else the training images')."""
    scene: Path | None = None
    """Scene folder for 'orbit'/'spiral' when the model is a bare splat file (runs know their scene)."""
    device: str = "auto"
    """Torch device to render on: auto, cpu, cuda or cuda:N (auto: cuda when there is a GPU)."""
    max_pixels: int = 7680 * 4320
    """Largest frame (width x height) to render, 8K by default; raise it for larger ones (memory grows with it)."""
    input_spz_axes: Literal["rub", "rdf"] = "rub"
    """Axes of an SPZ model, which the file does not say: rub (Niantic's, the format's own) or rdf (as
    splat-transform and SuperSplat write SPZ; without rdf their files render upside down)."""

    def main(self) -> None:
        import math

        from spatial.camera_path import MAX_FPS, load_camera_path, orbit_path, spiral_path, surrounding
        from spatial.errors import SpatialError
        from spatial.io.json_util import MAX_IMAGE_SIDE
        from spatial.render_path import render_camera_path
        from spatial.trained import load_model

        for flag, value in (("--width", self.width), ("--height", self.height)):
            if value is not None and not 1 <= value <= MAX_IMAGE_SIDE:
                raise SpatialError(f"{flag} must be between 1 and {MAX_IMAGE_SIDE}, got {value}")
        if self.fps is not None and not (math.isfinite(self.fps) and 0 < self.fps <= MAX_FPS):
            raise SpatialError(f"--fps must be above 0 and at most {MAX_FPS:g}, got {self.fps}")
        if self.frames < 2:
            raise SpatialError(f"--frames must be at least 2, got {self.frames}")
        if self.ipd is not None and not (math.isfinite(self.ipd) and self.ipd > 0):
            raise SpatialError(f"--ipd must be a distance above 0 in scene units, got {self.ipd}")
        model = load_model(self.model, self.device, spz_axes=self.input_spz_axes)
        console = Console()
        if self.path in ("auto", "orbit", "spiral"):
            if self.scene is not None:
                model.scene_path = self.scene
            cameras = model.training_cameras()
            kind = self.path
            if kind == "auto":
                kind = "orbit" if surrounding(cameras) else "spiral"
                console.print(f"path: {kind} (the training cameras "
                              + ("surround the subject" if kind == "orbit" else "face it from one side; "
                                 "--path orbit goes around, where they never looked") + ")", highlight=False)
            make = orbit_path if kind == "orbit" else spiral_path
            path = make(cameras, frames=self.frames, width=self.width, height=self.height, fps=self.fps or 30.0)
        else:
            path = load_camera_path(Path(self.path))
            path.width, path.height = self.width or path.width, self.height or path.height
            path.fps = self.fps or path.fps
        rig, about = self.rig(model, path)
        width, height = rig.frame_size(path.width, path.height)
        if width * height > self.max_pixels:
            raise SpatialError(f"{width}x{height} frames are larger than --max-pixels {self.max_pixels:,}; "
                               "pass a larger --max-pixels to render them, or a smaller --width/--height")
        console.print(f"rendering {len(path)} frames of {model.summary()} from {model.origin} at "
                      f"{width}x{height}{about} -> {self.out}", highlight=False)
        with progress_bar("render", len(path)) as advance:
            count = render_camera_path(model, path, self.out, self.output, lambda i: advance(i + 1, len(path)), rig)
        console.print(f"wrote {count} frames to [bold]{self.out}[/]")

    def rig(self, model, path) -> tuple:
        """The camera rig (spatial/rigs.py) for --camera, with the path's sizes set for it, and a few words on it."""
        from spatial.camera_path import scene_frame
        from spatial.errors import SpatialError
        from spatial.rigs import make_rig

        if self.camera in ("equirect", "vr180"):  # a panorama's own sizes: 2:1, or each eye square
            aspect = 2 if self.camera == "equirect" else 1
            height = self.height or (self.width // aspect if self.width else path.height)
            path.width, path.height = self.width or aspect * height, max(height, 1)
        ipd, up, about = 0.0, None, ""
        if self.camera in ("stereo-sbs", "stereo-tb", "vr180"):
            ipd = self.ipd or stereo_base(model, path)
            about = f", eyes {ipd:.4g} scene units apart" + ("" if self.ipd else " (1/30 of the median depth; --ipd)")
        if self.camera in ("equirect", "vr180"):
            try:
                up = scene_frame(model.training_cameras())[1]
                about += ", levelled to the scene's up"
            except SpatialError:
                about += ", levelled to each path camera's own up (no scene is known)"
        return make_rig(self.camera, ipd, up), about


def stereo_base(model, path) -> float:
    """1/30 of the median depth seen from eight of the path's cameras, rendered small."""
    import numpy as np
    import torch

    from spatial.cameras import Cameras
    from spatial.errors import SpatialError

    cameras = path.cameras()
    cameras = cameras[np.linspace(0, len(cameras) - 1, min(8, len(cameras))).round().astype(int).tolist()]
    scale = min(1.0, 160 / max(path.width, path.height))
    small = Cameras(cameras.cam_to_world, cameras.K * torch.tensor([scale, scale, 1.0], device=cameras.device)[:, None],
                    max(1, round(path.width * scale)), max(1, round(path.height * scale)))
    depths = torch.cat([out.depth[out.alpha > 0.5] for out in model.render_frames(small)])
    if depths.numel() == 0:
        raise SpatialError("nothing is in view along the camera path, so no eye distance follows from it; "
                           "pass --ipd in scene units")
    return float(depths.median()) / 30
