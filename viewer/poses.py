"""Between viser's poses (`wxyz`, `position`, a uniform `scale`) and ours (OpenCV `cam_to_world [4, 4]`,
`K [3, 3]`): viser uses OpenCV camera axes too, so no axis flips, only a change of representation."""

from __future__ import annotations

import numpy as np
import torch

from spatial.cameras import Cameras
from spatial.transforms import quat_to_rotmat, rotmat_to_quat


def pose_matrix(wxyz, position, scale: float = 1.0) -> torch.Tensor:
    """A similarity `[4, 4]` on the CPU from viser's rotation, position and uniform scale."""
    T = torch.eye(4, device="cpu")
    T[:3, :3] = scale * quat_to_rotmat(torch.tensor(np.asarray(wxyz), dtype=torch.float32, device="cpu"))
    T[:3, 3] = torch.tensor(np.asarray(position), dtype=torch.float32, device="cpu")
    return T


def pose_of(T: torch.Tensor) -> tuple[np.ndarray, np.ndarray, float]:
    """(wxyz, position, uniform scale) of a similarity `[4, 4]`: the inverse of `pose_matrix`."""
    s = float(torch.linalg.det(T[:3, :3]).abs() ** (1 / 3))
    return rotmat_to_quat(T[:3, :3] / s).numpy(), T[:3, 3].numpy(), s


def client_camera(camera, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV `cam_to_world [4, 4]` and `K [3, 3]` of a browser camera at `width x height`, on the CPU: a
    renderer moves them to its model's device."""
    f = 0.5 * height / np.tan(camera.fov / 2)
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=torch.float32, device="cpu")
    return pose_matrix(camera.wxyz, camera.position), K


def client_view(camera) -> Cameras:
    """A browser camera at the size the browser draws it, as a one-camera `Cameras`: what the user sees, for
    selections on screen (pixels (x, y) from its top-left corner)."""
    width, height = max(int(camera.image_width or 640), 1), max(int(camera.image_height or 480), 1)
    c2w, K = client_camera(camera, width, height)
    return Cameras(c2w[None], K[None], width, height)
