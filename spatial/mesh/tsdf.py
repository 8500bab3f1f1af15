"""A truncated signed distance volume fused from depth maps (Curless and Levoy), in PyTorch.

Each voxel keeps a running weighted average of `clamp((observed depth - voxel depth) / trunc, -1, 1)`
over the cameras that see it in front of, or just behind, the surface, and of the colour there.
The surface is the zero level, extracted by marching cubes over the voxels that were observed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


class TSDFVolume:
    def __init__(self, bounds_min: Tensor, bounds_max: Tensor, voxel_size: float, trunc_voxels: float = 4.0,
                 device: str | torch.device = "cpu"):
        self.origin = bounds_min.double().to(device)  # [3] corner of voxel (0, 0, 0)'s centre
        self.voxel_size = float(voxel_size)
        self.trunc = trunc_voxels * self.voxel_size
        self.shape = tuple(int(n) for n in torch.ceil((bounds_max - bounds_min) / voxel_size).long().clamp_min(2) + 1)
        n = int(np.prod(self.shape))
        self.tsdf = torch.ones(n, device=device)  # [V]
        self.weight = torch.zeros(n, device=device)  # [V]
        self.color = torch.zeros(n, 3, device=device)  # [V, 3]

    def voxel_centers(self, index: Tensor) -> Tensor:  # [V] flat indices -> [V, 3] world points
        X, Y, Z = self.shape
        ijk = torch.stack([index // (Y * Z), (index // Z) % Y, index % Z], -1)
        return (self.origin + ijk.double() * self.voxel_size).float()

    def integrate(self, depth: Tensor, rgb: Tensor, world_to_cam: Tensor, K: Tensor, chunk: int = 1 << 21) -> None:
        """Fuse one view: `depth [H, W]` (0 = no surface), `rgb [H, W, 3]`, `world_to_cam [4, 4]`, `K [3, 3]`."""
        H, W = depth.shape
        device = self.tsdf.device
        depth, rgb, world_to_cam, K = depth.to(device), rgb.to(device), world_to_cam.to(device), K.to(device)
        for start in range(0, self.tsdf.shape[0], chunk):
            index = torch.arange(start, min(start + chunk, self.tsdf.shape[0]), device=device)
            p = self.voxel_centers(index) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]  # [V, 3] camera frame
            z = p[:, 2]
            u = torch.floor(K[0, 0] * p[:, 0] / z.clamp_min(1e-6) + K[0, 2]).long()
            v = torch.floor(K[1, 1] * p[:, 1] / z.clamp_min(1e-6) + K[1, 2]).long()
            inside = (z > 1e-6) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
            index, z, u, v = index[inside], z[inside], u[inside], v[inside]
            observed = depth[v, u]
            sdf = observed - z
            keep = (observed > 0) & (sdf > -self.trunc)
            index, sdf, u, v = index[keep], sdf[keep], u[keep], v[keep]
            value = (sdf / self.trunc).clamp(-1, 1)
            w_old = self.weight[index]
            w_new = w_old + 1
            self.tsdf[index] = (self.tsdf[index] * w_old + value) / w_new
            self.color[index] = (self.color[index] * w_old[:, None] + rgb[v, u]) / w_new[:, None]
            self.weight[index] = w_new

    def extract(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Marching cubes at the zero level: vertices `[V, 3]` (world), faces `[F, 3]`, colours `[V, 3]` 0-1."""
        from skimage.measure import marching_cubes

        tsdf = self.tsdf.reshape(self.shape).cpu().numpy()
        observed = (self.weight.reshape(self.shape) > 0).cpu().numpy()
        if not observed.any() or tsdf[observed].min() > 0 or tsdf[observed].max() < 0:
            return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64), np.zeros((0, 3), np.float32)
        verts, faces, _, _ = marching_cubes(tsdf, level=0.0, mask=observed, allow_degenerate=False)
        colors = self._sample_colors(verts)
        world = self.origin.cpu().numpy() + verts * self.voxel_size
        return world.astype(np.float32), faces.astype(np.int64), colors

    def _sample_colors(self, verts: np.ndarray) -> np.ndarray:
        """Colour at each vertex from the nearest observed voxel corner (vertices lie on voxel edges)."""
        ijk = np.clip(np.round(verts).astype(np.int64), 0, np.array(self.shape) - 1)
        X, Y, Z = self.shape
        flat = torch.from_numpy(ijk[:, 0] * Y * Z + ijk[:, 1] * Z + ijk[:, 2])
        return self.color.cpu()[flat].clamp(0, 1).numpy().astype(np.float32)
