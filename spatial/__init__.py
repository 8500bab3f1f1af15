"""spatial: phone videos and photo sets to 3D worlds you can view, edit, export and render.

The public surface is re-exported here; everything else is an implementation detail.
Importing `spatial` needs no GPU and none of the optional extras.
"""

from spatial.camera_path import (
    CameraPath,
    interpolate_keyframes,
    load_camera_path,
    orbit_path,
    save_camera_path,
    spiral_path,
)
from spatial.cameras import Cameras, intrinsics_from_fov, look_at
from spatial.distortion import CameraModel
from spatial.errors import SpatialError
from spatial.formats import load_splats, save_splats
from spatial.images import read_image
from spatial.io import detect_format, load_scene, write_colmap, write_transforms
from spatial.mesh import FusionConfig, Mesh, mesh_from_depth, save_mesh, save_points
from spatial.render_path import render_camera_path
from spatial.rigs import make_rig
from spatial.scene import Scene
from spatial.splats.objects import ObjectsConfig
from spatial.splats.objects import segment as segment_objects
from spatial.splats.transform import merge_splats, transform_splats
from spatial.trained import SplatModel, TrainedModel, load_model

__version__ = "0.1.0"

__all__ = [
    "CameraModel",
    "CameraPath",
    "Cameras",
    "FusionConfig",
    "Mesh",
    "ObjectsConfig",
    "Scene",
    "SpatialError",
    "SplatModel",
    "TrainedModel",
    "detect_format",
    "interpolate_keyframes",
    "intrinsics_from_fov",
    "load_camera_path",
    "load_model",
    "load_scene",
    "load_splats",
    "look_at",
    "make_rig",
    "merge_splats",
    "mesh_from_depth",
    "orbit_path",
    "read_image",
    "render_camera_path",
    "save_camera_path",
    "save_mesh",
    "save_points",
    "save_splats",
    "segment_objects",
    "spiral_path",
    "transform_splats",
    "write_colmap",
    "write_transforms",
]
