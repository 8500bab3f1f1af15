"""Rotations and rigid/similarity transforms. Quaternions are `wxyz`, unit norm, as in COLMAP."""

from __future__ import annotations

import torch
from torch import Tensor

MAX_COORDINATE = 1e7
"""Scene units from the origin that any position (a splat, a camera, a layer's translation) may reach: room for
georeferenced (UTM) scenes; float32 keeps no useful precision beyond. Files that go further are refused."""


def quat_to_rotmat(quat_wxyz: Tensor) -> Tensor:
    """Quaternions `[..., 4]` (normalised here) to rotation matrices `[..., 3, 3]`."""
    w, x, y, z = torch.nn.functional.normalize(quat_wxyz, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(quat_wxyz.shape[:-1] + (3, 3))


def rotmat_to_quat(R: Tensor) -> Tensor:
    """Rotation matrices `[..., 3, 3]` to unit quaternions `[..., 4]` (wxyz, w >= 0).

    Shepperd's method: pick the largest of the four candidate denominators for stability.
    """
    m = R.reshape(-1, 3, 3)
    t = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    candidates = torch.stack(
        [
            torch.stack([1 + t, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]], -1),
            torch.stack([m[:, 2, 1] - m[:, 1, 2], 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
                         m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0]], -1),
            torch.stack([m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0],
                         1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], m[:, 1, 2] + m[:, 2, 1]], -1),
            torch.stack([m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1],
                         1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], -1),
        ],
        dim=1,
    )  # [N, 4 candidates, 4]
    diag = torch.stack([1 + t, 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
                        1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], 1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], -1)
    best = diag.argmax(dim=-1)
    q = candidates[torch.arange(m.shape[0]), best]
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True)
    q = torch.where(q[:, :1] < 0, -q, q)
    return q.reshape(R.shape[:-2] + (4,))


def make_transform(R: Tensor, t: Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """Similarity `[4, 4]`: x -> scale * R x + t."""
    T = torch.eye(4, dtype=R.dtype, device=R.device)
    T[:3, :3] = scale * R
    T[:3, 3] = t
    return T


def apply_to_points(T: Tensor, points: Tensor) -> Tensor:
    """Transform `[4, 4]` applied to points `[N, 3]`."""
    return points @ T[:3, :3].T + T[:3, 3]


def apply_to_cam_to_world(T: Tensor, cam_to_world: Tensor) -> Tensor:
    """Similarity `T [4, 4]` applied to camera poses `[C, 4, 4]`; the result stays rigid.

    The scale of `T` moves camera centres but must not scale the camera's axes.
    """
    scale = torch.linalg.det(T[:3, :3]).abs() ** (1.0 / 3.0)
    R = T[:3, :3] / scale
    out = cam_to_world.clone()
    out[:, :3, :3] = R @ cam_to_world[:, :3, :3]
    out[:, :3, 3] = apply_to_points(T, cam_to_world[:, :3, 3])
    return out


def rotation_between(a: Tensor, b: Tensor) -> Tensor:
    """The rotation `[3, 3]` taking the unit vector `a [3]` to the unit vector `b [3]` by the shortest turn
    (Rodrigues; half a turn about an axis normal to both when they are opposite), in `a`'s dtype and device."""
    eye = torch.eye(3, dtype=a.dtype, device=a.device)
    v, c = torch.linalg.cross(a, b), float(a @ b)
    if c < -1 + 1e-12:
        axis = torch.linalg.cross(a, eye[int(a.abs().argmin())])
        axis = axis / axis.norm()
        return 2 * torch.outer(axis, axis) - eye
    zero = torch.zeros((), dtype=a.dtype, device=a.device)
    V = torch.stack([torch.stack([zero, -v[2], v[1]]), torch.stack([v[2], zero, -v[0]]),
                     torch.stack([-v[1], v[0], zero])])
    return eye + V + V @ V / (1 + c)


MIN_SCALE, MAX_SCALE = 1e-6, 1e6  # a similarity's scale: beyond these a world's splats leave float32's useful range


def similarity_problem(T) -> str | None:
    """What keeps `T [4, 4]` from being a similarity a world can hold (rotation, one positive scale within
    `MIN_SCALE`..`MAX_SCALE`, translation within `MAX_COORDINATE`), in words; None when it is one."""
    import numpy as np

    try:
        T = np.asarray(T.tolist() if isinstance(T, Tensor) else T, np.float64)
    except (TypeError, ValueError):
        return "is not a matrix of numbers"
    if T.shape != (4, 4) or not np.isfinite(T).all():
        return "must be a finite 4x4 matrix"
    if not np.allclose(T[3], [0, 0, 0, 1]):
        return "must have the last row 0 0 0 1"
    largest = float(np.abs(T[:3, :3]).max())
    if largest > 2 * MAX_SCALE:  # before the determinant, which would overflow
        return f"scales by {largest:.3g}, outside {MIN_SCALE:g} to {MAX_SCALE:g}"
    det = float(np.linalg.det(T[:3, :3]))
    if det <= 0:
        return f"mirrors or flattens the world (determinant {det:.3g}); a similarity only moves, turns and scales"
    scale = det ** (1 / 3)
    if not MIN_SCALE <= scale <= MAX_SCALE:
        return f"scales by {scale:.3g}, outside {MIN_SCALE:g} to {MAX_SCALE:g}"
    R = T[:3, :3] / scale
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-3):
        return "shears or stretches (its 3x3 part is not a rotation times one scale)"
    if np.abs(T[:3, 3]).max() > MAX_COORDINATE:
        return f"moves by {np.abs(T[:3, 3]).max():.3g}, beyond {MAX_COORDINATE:g} scene units"
    return None
