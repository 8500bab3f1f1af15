"""Lens distortion models, as COLMAP defines them, on normalised image coordinates.

Normalised coordinates are `xy = (X/Z, Y/Z)` in the OpenCV camera frame. `distort` maps ideal
coordinates to the distorted ones that a real lens records; `undistort` inverts it numerically.
Every model is stored as four coefficients so cameras of one batch share one tensor layout:

| model            | coefficients       | COLMAP model names it stands for        |
|------------------|--------------------|-----------------------------------------|
| PINHOLE          | unused (zeros)     | SIMPLE_PINHOLE, PINHOLE                 |
| SIMPLE_RADIAL    | k, 0, 0, 0         | SIMPLE_RADIAL                           |
| OPENCV           | k1, k2, p1, p2     | RADIAL (k1, k2), OPENCV                 |
| OPENCV_FISHEYE   | k1, k2, k3, k4     | OPENCV_FISHEYE                          |

`EQUIRECTANGULAR` is no lens but a panorama that `spatial.cameras.Cameras` projects itself (longitude and
latitude in radians times fx and fy, plus cx and cy); it is made for renders, never read from a scene.
"""

from __future__ import annotations

from enum import Enum

import torch
from torch import Tensor


class CameraModel(str, Enum):
    PINHOLE = "PINHOLE"
    SIMPLE_RADIAL = "SIMPLE_RADIAL"
    OPENCV = "OPENCV"
    OPENCV_FISHEYE = "OPENCV_FISHEYE"
    EQUIRECTANGULAR = "EQUIRECTANGULAR"


def common_model(models: list[CameraModel]) -> CameraModel:
    """The one model that represents every camera of a batch exactly.

    PINHOLE and SIMPLE_RADIAL are special cases of OPENCV, so mixing them promotes to OPENCV;
    a fisheye lens cannot share a batch with the others.
    """
    kinds = set(models)
    if len(kinds) == 1:
        return kinds.pop()
    if CameraModel.OPENCV_FISHEYE in kinds:
        raise ValueError("fisheye cameras cannot be mixed with perspective cameras in one batch")
    if CameraModel.EQUIRECTANGULAR in kinds:
        raise ValueError("panoramas cannot be mixed with perspective cameras in one batch")
    return CameraModel.OPENCV


def promote(model: CameraModel, dist: Tensor, to: CameraModel) -> Tensor:
    """Coefficients `[..., 4]` of `model` rewritten for the more general model `to`."""
    if model == to or model == CameraModel.PINHOLE:
        return dist
    if model == CameraModel.SIMPLE_RADIAL and to == CameraModel.OPENCV:
        return dist  # k sits where OPENCV keeps k1; the others are zero.
    raise ValueError(f"cannot represent a {model.value} camera as {to.value}")


def distort(xy: Tensor, dist: Tensor, model: CameraModel) -> Tensor:
    """Ideal normalised coordinates `xy [..., 2]` to distorted ones, with `dist [..., 4]`."""
    if model == CameraModel.PINHOLE:
        return xy
    if model == CameraModel.EQUIRECTANGULAR:
        raise ValueError("a panorama has no normalised image plane to distort; Cameras projects it")
    x, y = xy[..., 0], xy[..., 1]
    k = dist.unbind(-1)
    r2 = x * x + y * y
    if model == CameraModel.SIMPLE_RADIAL:
        radial = 1 + k[0] * r2
        return xy * radial[..., None]
    if model == CameraModel.OPENCV:
        k1, k2, p1, p2 = k
        radial = 1 + k1 * r2 + k2 * r2 * r2
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + 2 * p2 * x * y + p1 * (r2 + 2 * y * y)
        return torch.stack([xd, yd], dim=-1)
    if model == CameraModel.OPENCV_FISHEYE:
        r = torch.sqrt(r2)
        theta = torch.atan(r)
        t2 = theta * theta
        theta_d = theta * (1 + t2 * (k[0] + t2 * (k[1] + t2 * (k[2] + t2 * k[3]))))
        # theta_d / r -> 1 as r -> 0; guard the division there.
        scale = torch.where(r > 1e-8, theta_d / r.clamp_min(1e-8), torch.ones_like(r))
        return xy * scale[..., None]
    raise ValueError(f"unknown camera model {model}")


def _opencv_jacobian(xy: Tensor, dist: Tensor) -> Tensor:
    """d distort / d xy for the OPENCV model: `[..., 2, 2]`."""
    x, y = xy[..., 0], xy[..., 1]
    k1, k2, p1, p2 = dist.unbind(-1)
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2
    d_radial = 2 * k1 + 4 * k2 * r2  # d radial / d(x or y), divided by that coordinate
    dxx = radial + x * x * d_radial + 2 * p1 * y + 6 * p2 * x
    dxy = x * y * d_radial + 2 * p1 * x + 2 * p2 * y
    dyx = x * y * d_radial + 2 * p2 * y + 2 * p1 * x
    dyy = radial + y * y * d_radial + 2 * p2 * x + 6 * p1 * y
    return torch.stack([torch.stack([dxx, dxy], -1), torch.stack([dyx, dyy], -1)], -2)


def undistort(xy_d: Tensor, dist: Tensor, model: CameraModel, iterations: int = 20) -> Tensor:
    """Distorted normalised coordinates `xy_d [..., 2]` back to ideal ones (Newton's method).

    Radial models solve the one-dimensional radius equation; OPENCV solves the 2x2 system with
    its analytic Jacobian. Converges to ~1e-7 within the lens's valid field of view.
    """
    if model == CameraModel.PINHOLE:
        return xy_d
    if model == CameraModel.EQUIRECTANGULAR:
        raise ValueError("a panorama has no normalised image plane to undistort; Cameras projects it")
    if model == CameraModel.OPENCV_FISHEYE:
        k1, k2, k3, k4 = dist.unbind(-1)
        theta_d = torch.linalg.norm(xy_d, dim=-1)
        theta = theta_d.clone()
        for _ in range(iterations):
            t2 = theta * theta
            f = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))) - theta_d
            df = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
            theta = theta - f / df
        r = torch.tan(theta)
        scale = torch.where(theta_d > 1e-8, r / theta_d.clamp_min(1e-8), torch.ones_like(r))
        return xy_d * scale[..., None]
    if model == CameraModel.SIMPLE_RADIAL:
        k = dist[..., 0]
        rd = torch.linalg.norm(xy_d, dim=-1)
        r = rd.clone()
        for _ in range(iterations):
            f = r * (1 + k * r * r) - rd
            df = 1 + 3 * k * r * r
            r = r - f / df
        scale = torch.where(rd > 1e-8, r / rd.clamp_min(1e-8), torch.ones_like(r))
        return xy_d * scale[..., None]
    if model == CameraModel.OPENCV:
        xy = xy_d.clone()
        for _ in range(iterations):
            residual = distort(xy, dist, model) - xy_d  # [..., 2]
            J = _opencv_jacobian(xy, dist)  # [..., 2, 2]
            # the 2x2 solve in closed form (Cramer's rule): a few elementwise ops, where a batched LU is two calls
            # of tens of ops each, per iteration
            a, b, c, d = J[..., 0, 0], J[..., 0, 1], J[..., 1, 0], J[..., 1, 1]
            det = a * d - b * c
            step = torch.stack([d * residual[..., 0] - b * residual[..., 1],
                                a * residual[..., 1] - c * residual[..., 0]], -1) / det[..., None]
            xy = xy - step
        return xy
    raise ValueError(f"unknown camera model {model}")
