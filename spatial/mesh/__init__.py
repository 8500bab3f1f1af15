"""Meshes and point clouds from trained models: TSDF fusion of rendered depth, marching cubes, files.

    mesh = mesh_from_depth(model.render_frames(cams), cams)   # spatial.mesh.fusion
    save_mesh(mesh, "scene.glb")                              # PLY, OBJ or GLB with vertex colours
"""

from spatial.mesh.files import Mesh, save_mesh, save_points
from spatial.mesh.fusion import FusionConfig, depth_points, mesh_from_depth
from spatial.mesh.tsdf import TSDFVolume

__all__ = ["FusionConfig", "Mesh", "TSDFVolume", "depth_points", "mesh_from_depth", "save_mesh",
           "save_points"]
