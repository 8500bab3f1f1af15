"""Batched cameras in the OpenCV convention: +x right, +y down, +z forward.

A camera is a pinhole with lens distortion (spatial/distortion.py), or an equirectangular panorama
(`CameraModel.EQUIRECTANGULAR`, for renders): `u = fx * longitude + cx`, `v = fy * latitude + cy` with longitude
atan2(x, z) (right of straight ahead is positive) and latitude atan2(y, sqrt(x^2 + z^2)) (below the horizon of
the camera's frame is positive, as +y is down), so K's fx and fy are pixels per radian.

Pixel coordinates are continuous with the centre of the top-left pixel at (0.5, 0.5), as in COLMAP
and gsplat, so `u = fx * X/Z + cx` and an image of width W spans u in [0, W].
Axis flips to other conventions (OpenGL, Blender) happen only in the file readers and writers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from spatial.distortion import CameraModel, common_model, distort, promote, undistort


@dataclass
class Cameras:
    cam_to_world: Tensor  # [C, 4, 4] rigid transforms, camera frame -> world frame
    K: Tensor  # [C, 3, 3] intrinsics in pixels
    width: Tensor  # [C] int64
    height: Tensor  # [C] int64
    model: CameraModel = CameraModel.PINHOLE
    dist: Tensor = field(default=None)  # type: ignore[assignment]  # [C, 4], see spatial.distortion

    def __post_init__(self) -> None:
        C = self.cam_to_world.shape[0]
        if self.cam_to_world.shape != (C, 4, 4) or self.K.shape != (C, 3, 3):
            raise ValueError(
                f"expected cam_to_world [C,4,4] and K [C,3,3], got {tuple(self.cam_to_world.shape)} "
                f"and {tuple(self.K.shape)}"
            )
        device = self.cam_to_world.device  # sizes live beside the poses
        self.width = torch.as_tensor(self.width, dtype=torch.int64, device=device).reshape(-1).expand(C).clone()
        self.height = torch.as_tensor(self.height, dtype=torch.int64, device=device).reshape(-1).expand(C).clone()
        self.model = CameraModel(self.model)
        if self.dist is None:
            self.dist = self.K.new_zeros(C, 4)
        if self.dist.shape != (C, 4):
            raise ValueError(f"expected dist [C,4], got {tuple(self.dist.shape)}")

    # ---- batch plumbing ---------------------------------------------------------------------
    def __len__(self) -> int:
        return self.cam_to_world.shape[0]

    def __getitem__(self, index) -> Cameras:
        if isinstance(index, int):
            index = [index]
        return Cameras(
            self.cam_to_world[index], self.K[index], self.width[index], self.height[index],
            self.model, self.dist[index],
        )

    @property
    def device(self) -> torch.device:
        return self.cam_to_world.device

    def to(self, device: torch.device | str) -> Cameras:
        return Cameras(
            self.cam_to_world.to(device), self.K.to(device), self.width.to(device),
            self.height.to(device), self.model, self.dist.to(device),
        )

    def simplified(self) -> Cameras:
        """These cameras as PINHOLE when their model is a pinhole with lens distortion (SIMPLE_RADIAL, OPENCV) and
        every coefficient is zero (nothing to undo: rays then skip the Newton iterations of `undistort`), else
        themselves. A fisheye with zero coefficients is still a fisheye (equidistant, not a pinhole). Reads the
        coefficients once."""
        if self.model not in (CameraModel.SIMPLE_RADIAL, CameraModel.OPENCV) or bool(self.dist.any()):
            return self
        return Cameras(self.cam_to_world, self.K, self.width, self.height, CameraModel.PINHOLE, self.dist)

    @staticmethod
    def cat(batches: list[Cameras]) -> Cameras:
        """One batch from several; models are promoted to one that represents all of them."""
        model = common_model([b.model for b in batches])
        return Cameras(
            torch.cat([b.cam_to_world for b in batches]),
            torch.cat([b.K for b in batches]),
            torch.cat([b.width for b in batches]),
            torch.cat([b.height for b in batches]),
            model,
            torch.cat([promote(b.model, b.dist, model) for b in batches]),
        )

    # ---- geometry ---------------------------------------------------------------------------
    @property
    def world_to_cam(self) -> Tensor:  # [C, 4, 4]
        return rigid_inverse(self.cam_to_world)

    @property
    def centers(self) -> Tensor:  # [C, 3]
        return self.cam_to_world[:, :3, 3]

    @property
    def fx(self) -> Tensor:  # [C]
        return self.K[:, 0, 0]

    @property
    def fy(self) -> Tensor:  # [C]
        return self.K[:, 1, 1]

    @property
    def fov_y(self) -> Tensor:  # [C] vertical field of view in radians (pinhole: 2 atan(H / 2 fy))
        return 2 * torch.atan(0.5 * self.height.to(self.K.dtype) / self.fy)

    def project(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """World points `[N, 3]` (or `[C, N, 3]`) to pixels `[C, N, 2]` and depths `[C, N]`.

        Depth is the camera-frame z (a panorama's: the distance); points behind the camera get uv of NaN-free but
        meaningless values, so callers mask with `depth > 0`.
        """
        if points.dim() == 2:
            points = points.expand(len(self), -1, -1)
        w2c = self.world_to_cam
        p_cam = torch.einsum("cij,cnj->cni", w2c[:, :3, :3], points) + w2c[:, None, :3, 3]  # [C, N, 3]
        if self.model == CameraModel.EQUIRECTANGULAR:
            x, y, z = p_cam.unbind(-1)
            angles = torch.stack([torch.atan2(x, z), torch.atan2(y, torch.sqrt(x * x + z * z))], -1)
            return self._pixels_from_normalised(angles), p_cam.norm(dim=-1)
        z = p_cam[..., 2]
        safe_z = torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
        xy = p_cam[..., :2] / safe_z[..., None]
        xy = distort(xy, self.dist[:, None, :], self.model)
        return self._pixels_from_normalised(xy), z

    def unproject(self, uv: Tensor, depth: Tensor) -> Tensor:
        """Pixels `[C, N, 2]` with camera-frame depths `[C, N]` (a panorama's: distances) to world points
        `[C, N, 3]`."""
        if self.model == CameraModel.EQUIRECTANGULAR:
            origins, dirs = self.pixel_rays(uv)
            return origins + dirs * depth[..., None]
        xy = undistort(self._normalised_from_pixels(uv), self.dist[:, None, :], self.model)
        p_cam = torch.cat([xy * depth[..., None], depth[..., None]], dim=-1)
        return torch.einsum("cij,cnj->cni", self.cam_to_world[:, :3, :3], p_cam) + self.centers[:, None]

    def pixel_rays(self, uv: Tensor) -> tuple[Tensor, Tensor]:
        """Rays through pixels `[C, N, 2]`: origins `[C, N, 3]` and unit directions `[C, N, 3]`."""
        if self.model == CameraModel.EQUIRECTANGULAR:  # longitude (right) and latitude (down) in radians
            lon, lat = self._normalised_from_pixels(uv).unbind(-1)
            d_cam = torch.stack([lat.cos() * lon.sin(), lat.sin(), lat.cos() * lon.cos()], -1)
        else:
            xy = undistort(self._normalised_from_pixels(uv), self.dist[:, None, :], self.model)
            d_cam = torch.cat([xy, torch.ones_like(xy[..., :1])], dim=-1)
        d_world = torch.einsum("cij,cnj->cni", self.cam_to_world[:, :3, :3], d_cam)
        d_world = d_world / torch.linalg.norm(d_world, dim=-1, keepdim=True)
        return self.centers[:, None].expand_as(d_world), d_world

    def rays(self, index: int) -> tuple[Tensor, Tensor]:
        """Rays through every pixel centre of camera `index`: origins and directions `[H, W, 3]`."""
        H, W = int(self.height[index]), int(self.width[index])
        uv = pixel_centers(W, H, device=self.device, dtype=self.K.dtype)  # [H, W, 2]
        o, d = self[index].pixel_rays(uv.reshape(1, -1, 2))
        return o.reshape(H, W, 3), d.reshape(H, W, 3)

    def resized(self, width: int | Tensor, height: int | Tensor) -> Cameras:
        """The same cameras seeing images resampled to `width` x `height` pixels."""
        width = torch.as_tensor(width, dtype=torch.int64, device=self.device).expand(len(self))
        height = torch.as_tensor(height, dtype=torch.int64, device=self.device).expand(len(self))
        sx = width.to(self.K.dtype) / self.width.to(self.K.dtype)
        sy = height.to(self.K.dtype) / self.height.to(self.K.dtype)
        K = self.K.clone()
        K[:, 0] *= sx[:, None]
        K[:, 1] *= sy[:, None]
        return Cameras(self.cam_to_world, K, width, height, self.model, self.dist)

    def downscaled(self, factor: int) -> Cameras:
        """Cameras for images downscaled by `factor`, sized as `spatial.images` writes them."""
        return self.resized(downscaled_size(self.width, factor), downscaled_size(self.height, factor))

    # ---- helpers ----------------------------------------------------------------------------
    def _normalised_from_pixels(self, uv: Tensor) -> Tensor:
        fx, fy = self.K[:, None, 0, 0], self.K[:, None, 1, 1]
        cx, cy = self.K[:, None, 0, 2], self.K[:, None, 1, 2]
        return torch.stack([(uv[..., 0] - cx) / fx, (uv[..., 1] - cy) / fy], dim=-1)

    def _pixels_from_normalised(self, xy: Tensor) -> Tensor:
        fx, fy = self.K[:, None, 0, 0], self.K[:, None, 1, 1]
        cx, cy = self.K[:, None, 0, 2], self.K[:, None, 1, 2]
        return torch.stack([xy[..., 0] * fx + cx, xy[..., 1] * fy + cy], dim=-1)


def downscaled_size(size: Tensor | int, factor: int) -> Tensor:
    """Image side length after downscaling by `factor`: rounded down (at least one pixel), the size nerfstudio's
    readers give the cameras of the `images_N/` copies they load."""
    size = torch.as_tensor(size, dtype=torch.int64)
    return torch.clamp(size // factor, min=1)


def pixel_centers(width: int, height: int, device=None, dtype=torch.float32) -> Tensor:
    """Continuous coordinates of every pixel centre, `[H, W, 2]` as (u, v)."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    return torch.stack([u, v], dim=-1)


def rigid_inverse(T: Tensor) -> Tensor:
    """Inverse of rigid transforms `[..., 4, 4]` without a general matrix inverse."""
    R, t = T[..., :3, :3], T[..., :3, 3]
    out = torch.eye(4, dtype=T.dtype, device=T.device).expand(T.shape).clone()
    out[..., :3, :3] = R.transpose(-1, -2)
    out[..., :3, 3] = -(R.transpose(-1, -2) @ t[..., None])[..., 0]
    return out


def look_at(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """OpenCV `cam_to_world [C, 4, 4]` for cameras at `eye [C, 3]` looking at `target [C, 3]`.

    `up [3]` is the world direction that should appear upwards in the image (-y of the camera).
    """
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    down = -up.expand_as(forward)
    right = torch.nn.functional.normalize(torch.cross(down, forward, dim=-1), dim=-1)
    down = torch.cross(forward, right, dim=-1)
    T = torch.zeros(eye.shape[0], 4, 4, dtype=eye.dtype, device=eye.device)
    T[:, :3, 0], T[:, :3, 1], T[:, :3, 2], T[:, :3, 3] = right, down, forward, eye
    T[:, 3, 3] = 1
    return T


def intrinsics_from_fov(fov_x_degrees: float, width: int, height: int) -> Tensor:
    """Square-pixel intrinsics `[3, 3]` with the principal point at the image centre."""
    f = 0.5 * width / torch.tan(torch.deg2rad(torch.tensor(fov_x_degrees, dtype=torch.float64)) / 2)
    return torch.tensor(
        [[float(f), 0.0, width / 2], [0.0, float(f), height / 2], [0.0, 0.0, 1.0]], dtype=torch.float32
    )
