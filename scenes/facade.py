"""`facade`: a forward-facing capture of objects before a textured wall, like an LLFF scene.

Written as a COLMAP folder (`images/`, `sparse/0`) plus nerfstudio's `transforms.json`, with
opaque RGB images: every ray hits the wall or the ground. World frame: +z up, metres.
"""

from __future__ import annotations

import torch

from spatial.cameras import Cameras, intrinsics_from_fov, look_at
from spatial.scenes.config import SceneSize
from spatial.scenes.raytrace import Box, Material, Primitive, Rectangle, Sphere
from spatial.scenes.textures import texture

LAYOUT = "colmap"
FOV_X_DEGREES = 60.0


def primitives() -> list[Primitive]:
    return [
        Rectangle((0, 2.5, 1.5), (1, 0, 0), (0, 0, 1), 3.5, 2.0,
                  Material(texture("immunohistochemistry"), (1.0, 0.95, 0.9))),
        Rectangle((0, 0.5, 0), (1, 0, 0), (0, 1, 0), 3.5, 2.0, Material(texture("gravel"), (0.8, 0.8, 0.7))),
        Sphere((-0.8, 1.2, 0.45), 0.45, Material(texture("astronaut"))),
        Box((0.9, 1.5, 0.5), (0.35, 0.35, 0.5), 30.0, Material(texture("coffee"))),
        Sphere((0.2, 0.6, 0.25), 0.25, Material(texture("chelsea"))),
    ]


def cameras(size: SceneSize) -> Cameras:
    i = torch.arange(size.views, dtype=torch.float64)
    # A jittered grid of positions on a vertical plane in front of the scene.
    x = -0.8 + 1.6 * torch.remainder(i * 0.6180339887, 1.0)
    z = 0.7 + 0.8 * torch.remainder(i * 0.7548776662 + 0.3, 1.0)
    eye = torch.stack([x, torch.full_like(x, -2.2), z], -1)
    target = torch.stack([0.3 * x, torch.full_like(x, 2.5), torch.full_like(x, 1.0)], -1)
    c2w = look_at(eye, target, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).float()
    K = intrinsics_from_fov(FOV_X_DEGREES, size.width, size.height)
    return Cameras(c2w, K.expand(size.views, 3, 3).clone(), size.width, size.height)
