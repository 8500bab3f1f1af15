"""spatial: phone videos and photo sets to 3D worlds you can view, edit, export and render.

The public surface is re-exported here; everything else is an implementation detail.
Importing `spatial` needs no GPU and none of the optional extras.
"""

from spatial.cameras import Cameras, intrinsics_from_fov, look_at
from spatial.distortion import CameraModel
from spatial.errors import SpatialError
from spatial.images import read_image
from spatial.io import detect_format, load_scene, write_colmap, write_transforms
from spatial.scene import Scene

__version__ = "0.1.0"

__all__ = [
    "CameraModel",
    "Cameras",
    "Scene",
    "SpatialError",
    "detect_format",
    "intrinsics_from_fov",
    "load_scene",
    "look_at",
    "read_image",
    "write_colmap",
    "write_transforms",
]
