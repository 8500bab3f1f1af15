"""Camera rigs: what one video frame is made of, given the path's camera at that frame.

    rig = make_rig("equirect", up=scene_up)       # or pinhole, stereo-sbs, stereo-tb, vr180
    out = rig.render(model, path_camera)          # RenderOutput [1, H, W, ...]: the whole frame

- `pinhole`: the path camera itself.
- `stereo-sbs`, `stereo-tb`: two eyes `ipd` apart along the camera's x axis, with parallel optical axes (no
  toe-in), left eye left or on top. Each eye is a pinhole of the path camera's size and field of view.
- `equirect`: a 360x180 panorama (`CameraModel.EQUIRECTANGULAR`: longitude across, latitude down) from the path
  camera's place, its centre column looking along the camera's heading; `vr180`: a 180x180 half-panorama per eye,
  the eyes `ipd` apart and side by side. Panoramas are levelled: their up is the scene's (`up`), not the path
  camera's tilt, so the horizon stays straight as the path pitches and rolls. Their depth is the distance along
  each pixel's ray.

Every rig renders through `TrainedModel.render_frames`, so any model draws it: splats project onto the panorama
directly (spatial.render.projection.project_equirect), a NeRF traces the panorama's rays. A rig also says how a
video of it is labelled for players (`label`; spatial/spherical_video.py). A new rig is a class here and one line
in `RIGS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.distortion import CameraModel
from spatial.render import RenderOutput
from spatial.spherical_video import VideoLabel
from spatial.trained import TrainedModel


class Rig:
    """The path camera as it is: a pinhole picture."""

    name: str = "pinhole"
    stereo: str = "mono"  # how the frame holds two eyes: mono, left-right, top-bottom
    projection: str = "rectilinear"  # rectilinear (a flat picture) or equirect
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # equirect crop: top, bottom, left, right

    def views(self, camera: Cameras) -> Cameras:
        """The cameras to render for one path camera (`[1]`): one, or a left and a right eye."""
        return camera

    def render(self, model: TrainedModel, camera: Cameras) -> RenderOutput:
        """The frame for path camera `camera`: its views' renders, side by side or left on top."""
        outs = list(model.render_frames(self.views(camera)))
        if len(outs) == 1:
            return outs[0]
        axis = 1 if self.stereo == "top-bottom" else 2  # [1, H, W, c]: down or across
        rgb, alpha, depth = (torch.cat([getattr(o, name) for o in outs], axis) for name in ("rgb", "alpha", "depth"))
        none = rgb.new_zeros(1, 0, 2)  # a frame of two eyes is no single camera's: no per-Gaussian outputs
        return RenderOutput(rgb, alpha, depth, none, none.to(torch.int32), none[..., 0])

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """The video frame's (width, height) for eyes or panoramas of `width` x `height`."""
        if self.stereo == "mono":
            return width, height
        return (2 * width, height) if self.stereo == "left-right" else (width, 2 * height)

    @property
    def label(self) -> VideoLabel:
        """What a video of this rig tells players (spatial/spherical_video.py)."""
        return VideoLabel(self.stereo, self.projection, self.bounds)


@dataclass
class Stereo(Rig):
    ipd: float = 0.063  # eye distance in scene units
    layout: str = "sbs"  # sbs: left | right; tb: left over right

    def __post_init__(self) -> None:
        self.name, self.stereo = f"stereo-{self.layout}", "left-right" if self.layout == "sbs" else "top-bottom"

    def views(self, camera: Cameras) -> Cameras:
        return Cameras.cat([eye_camera(camera, -self.ipd / 2), eye_camera(camera, self.ipd / 2)])


def eye_camera(camera: Cameras, offset: float) -> Cameras:
    """`camera` moved `offset` scene units along its own x axis (right), its axes unchanged."""
    c2w = camera.cam_to_world.clone()
    c2w[:, :3, 3] += offset * c2w[:, :3, 0]
    return Cameras(c2w, camera.K, camera.width, camera.height, camera.model, camera.dist)


@dataclass
class Panorama(Rig):
    """An equirectangular panorama over longitudes `lon` (radians, right of the heading positive; the latitudes
    are always the full -90 to 90 degrees), for one eye or, with `ipd` > 0, two side by side."""

    lon: tuple[float, float] = (-math.pi, math.pi)
    up: Tensor | None = None  # [3] the scene's up in the world; None: each path camera's own (-y)
    ipd: float = 0.0

    def __post_init__(self) -> None:
        full = self.lon[1] - self.lon[0] >= 2 * math.pi - 1e-9
        self.name = "equirect" if full else "vr180"
        self.projection, self.stereo = "equirect", "left-right" if self.ipd > 0 else "mono"
        # the share of a full 360x180 panorama cut off each side (top, bottom, left, right), as players read it
        self.bounds = (0.0, 0.0, (self.lon[0] + math.pi) / (2 * math.pi), (math.pi - self.lon[1]) / (2 * math.pi))

    def levelled(self, camera: Cameras) -> Tensor:
        """`[3, 3]` the panorama's axes in the world (columns: x right, y down, z the heading): the path camera's
        heading, turned level about the scene's up."""
        c2w = camera.cam_to_world[0, :3, :3].double()
        up = -c2w[:, 1] if self.up is None else self.up.to(c2w).reshape(3)
        up = up / up.norm()
        forward = c2w[:, 2] - (c2w[:, 2] @ up) * up
        if forward.norm() < 1e-6:  # looking straight up or down: the heading is where the camera's top points
            forward = -c2w[:, 1] - (-c2w[:, 1] @ up) * up
        forward = forward / forward.norm()
        down = -up
        return torch.stack([torch.linalg.cross(down, forward), down, forward], 1)

    def views(self, camera: Cameras) -> Cameras:
        W, H = int(camera.width[0]), int(camera.height[0])
        device = camera.device
        axes = self.levelled(camera)  # [3, 3]
        eyes = [0.0] if self.ipd <= 0 else [-self.ipd / 2, self.ipd / 2]
        c2w = torch.eye(4, dtype=torch.float64, device=device).repeat(len(eyes), 1, 1)
        c2w[:, :3, :3] = axes
        offsets = torch.tensor(eyes, dtype=torch.float64, device=device)[:, None] * axes[:, 0]  # [E, 3] level right
        c2w[:, :3, 3] = camera.cam_to_world[0, :3, 3].double() + offsets
        fx, fy = W / (self.lon[1] - self.lon[0]), H / math.pi  # pixels per radian
        K = torch.tensor([[fx, 0, -fx * self.lon[0]], [0, fy, fy * math.pi / 2], [0, 0, 1]], dtype=torch.float64,
                         device=device)
        return Cameras(c2w.float(), K.float().expand(len(eyes), 3, 3), W, H, CameraModel.EQUIRECTANGULAR)


def make_rig(name: str, ipd: float = 0.063, up: Tensor | None = None) -> Rig:
    """The rig `name` (see `RIGS`); `ipd` in scene units for the stereo ones, `up` `[3]` the scene's up."""
    if name not in RIGS:
        raise ValueError(f"unknown camera rig {name!r}; choose from {', '.join(RIGS)}")
    return RIGS[name](ipd, up)


RIGS = {
    "pinhole": lambda ipd, up: Rig(),
    "stereo-sbs": lambda ipd, up: Stereo(ipd, "sbs"),
    "stereo-tb": lambda ipd, up: Stereo(ipd, "tb"),
    "equirect": lambda ipd, up: Panorama(up=up),
    "vr180": lambda ipd, up: Panorama((-math.pi / 2, math.pi / 2), up=up, ipd=ipd),
}
