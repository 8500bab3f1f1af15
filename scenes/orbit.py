"""`orbit`: textured objects on a ground square, seen by cameras circling at varying heights.

The object-centric scene, written in the Blender-synthetic layout with RGBA images (transparent
where no surface is hit) and a `points3d.ply` of true surface points, as the 3DGS code reads it.
World frame: +z up, metres; the ground square spans [-2, 2]^2 at z = 0.
"""

from __future__ import annotations

import math

import torch

from spatial.cameras import Cameras, intrinsics_from_fov, look_at
from spatial.scenes.config import SceneSize
from spatial.scenes.raytrace import Box, Material, Primitive, Rectangle, Sphere
from spatial.scenes.textures import texture

LAYOUT = "blender"
FOV_X_DEGREES = 55.0


def primitives() -> list[Primitive]:
    return [
        Rectangle((0, 0, 0), (1, 0, 0), (0, 1, 0), 2.0, 2.0, Material(texture("gravel"), (0.85, 0.75, 0.6))),
        Sphere((-0.6, 0.45, 0.5), 0.5, Material(texture("astronaut"))),
        Box((0.7, -0.3, 0.4), (0.4, 0.3, 0.4), 25.0, Material(texture("coffee"))),
        Sphere((0.55, 0.85, 0.3), 0.3, Material(texture("chelsea"))),
        Box((-0.45, -0.85, 0.6), (0.2, 0.2, 0.6), -15.0, Material(texture("rocket"))),
    ]


def cameras(size: SceneSize) -> Cameras:
    i = torch.arange(size.views, dtype=torch.float64)
    azimuth = 2 * math.pi * i / size.views
    height = 0.9 + 1.3 * torch.remainder(i * 0.6180339887, 1.0)  # golden-ratio spread of heights
    radius = 3.3
    eye = torch.stack([radius * torch.cos(azimuth), radius * torch.sin(azimuth), height], -1)
    target = torch.tensor([0.0, 0.0, 0.4], dtype=torch.float64).expand_as(eye)
    c2w = look_at(eye, target, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).float()
    K = intrinsics_from_fov(FOV_X_DEGREES, size.width, size.height)
    return Cameras(c2w, K.expand(size.views, 3, 3).clone(), size.width, size.height)
