"""Camera paths for renders: orbits, spirals and smooth paths through keyframes, and their JSON.

    path = orbit_path(scene.cameras, frames=120)             # circle the training cameras' subject
    path = interpolate_keyframes(c2w_keys, fovs, frames=90)  # smooth curve through viewer keyframes
    save_camera_path(path, "path.json")                       # nerfstudio's camera-path layout
    cameras = path.cameras()                                  # a `Cameras` batch to render

The JSON is nerfstudio's (`camera_path` entries with an OpenGL `camera_to_world`, vertical `fov` in
degrees and `aspect`; `render_width`, `render_height`, `fps`, `seconds`), so `ns-render` reads our
paths and we read theirs. Keyframes, when a path has them, are kept under `keyframes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from spatial.cameras import Cameras, look_at
from spatial.errors import SpatialError, file_error
from spatial.files import write_json_atomic
from spatial.io.json_util import GL_FROM_CV, MAX_IMAGE_SIDE, check_rigid, number, read_json
from spatial.transforms import MAX_COORDINATE, quat_to_rotmat, rotmat_to_quat


@dataclass
class CameraPath:
    cam_to_world: Tensor  # [F, 4, 4] OpenCV, one per frame
    fov_y_degrees: Tensor  # [F] vertical field of view
    width: int = 640
    height: int = 480
    fps: float = 30.0
    keyframes: list[dict] = field(default_factory=list)  # [{"cam_to_world": [4, 4] list, "fov_y_degrees": float}]

    def __len__(self) -> int:
        return self.cam_to_world.shape[0]

    @property
    def seconds(self) -> float:
        return len(self) / self.fps

    def cameras(self) -> Cameras:
        f = 0.5 * self.height / torch.tan(torch.deg2rad(self.fov_y_degrees.double()) / 2)  # [F]
        K = torch.zeros(len(self), 3, 3, dtype=torch.float64)
        K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = f, f, self.width / 2, self.height / 2, 1
        return Cameras(self.cam_to_world.float(), K.float(), self.width, self.height)


# ---- generators -------------------------------------------------------------------------------
def scene_frame(cameras: Cameras) -> tuple[Tensor, Tensor, float, float]:
    """Where training cameras look: (centre [3], up [3], radius, height of the cameras above centre).

    The centre is the point nearest to all optical axes (least squares). Up is the mean of the
    cameras' up directions (-y), which is how photographers hold cameras.
    """
    c2w = cameras.cam_to_world.double()
    origins, forward = c2w[:, :3, 3], torch.nn.functional.normalize(c2w[:, :3, 2], dim=-1)
    P = torch.eye(3, dtype=torch.float64) - forward[:, :, None] * forward[:, None, :]  # [C, 3, 3]
    A, b = P.sum(0), (P @ origins[:, :, None]).sum(0)[:, 0]
    center = torch.linalg.lstsq(A, b).solution if torch.linalg.matrix_rank(A) == 3 else origins.mean(0)
    up = torch.nn.functional.normalize(-c2w[:, :3, 1].mean(0), dim=0)
    offsets = origins - center
    height = float((offsets @ up).mean())
    radius = float((offsets - (offsets @ up)[:, None] * up).norm(dim=-1).mean())
    return center, up, radius, height


def surrounding(cameras: Cameras) -> bool:
    """Whether the training cameras surround their subject (seen from at least half a turn around it),
    rather than facing it from one side, as a forward-facing capture does."""
    center, up, _, _ = scene_frame(cameras)
    offsets = cameras.cam_to_world[:, :3, 3].double() - center
    flat = offsets - (offsets @ up)[:, None] * up  # [C, 3] in the ground plane
    e1 = torch.nn.functional.normalize(flat.mean(0) if flat.mean(0).norm() > 1e-9 else flat[0], dim=0)
    e2 = torch.cross(up, e1, dim=0)
    angles = torch.sort(torch.atan2(flat @ e2, flat @ e1)).values  # [C] in (-pi, pi]
    gaps = torch.diff(torch.cat([angles, angles[:1] + 2 * math.pi]))
    return float(2 * math.pi - gaps.max()) >= math.pi


def orbit_path(cameras: Cameras, frames: int = 120, fov_y_degrees: float | None = None, width: int | None = None,
               height: int | None = None, fps: float = 30.0, radius_scale: float = 1.0,
               height_offset: float = 0.0) -> CameraPath:
    """One turn around the subject of `cameras` (training cameras), at their mean radius and height."""
    center, up, radius, elevation = scene_frame(cameras)
    radius *= radius_scale
    # a basis of the ground plane, starting from the first camera's direction
    start = cameras.cam_to_world[0, :3, 3].double() - center
    e1 = torch.nn.functional.normalize(start - (start @ up) * up, dim=0)
    e2 = torch.cross(up, e1, dim=0)
    angle = 2 * math.pi * torch.arange(frames, dtype=torch.float64) / frames
    eye = center + radius * (torch.cos(angle)[:, None] * e1 + torch.sin(angle)[:, None] * e2)
    eye = eye + (elevation + height_offset) * up
    c2w = look_at(eye, center.expand_as(eye), up)
    return _with_defaults(c2w, cameras, fov_y_degrees, width, height, fps)


def spiral_path(cameras: Cameras, frames: int = 120, rotations: int = 2, radius_fraction: float = 0.5,
                fov_y_degrees: float | None = None, width: int | None = None, height: int | None = None,
                fps: float = 30.0) -> CameraPath:
    """A spiral around the mean training pose, looking at the cameras' focus (for forward-facing captures)."""
    center, up, _, _ = scene_frame(cameras)
    c2w = cameras.cam_to_world.double()
    origins = c2w[:, :3, 3]
    mean_origin = origins.mean(0)
    right = torch.nn.functional.normalize(c2w[:, :3, 0].mean(0), dim=0)
    down = torch.nn.functional.normalize(c2w[:, :3, 1].mean(0), dim=0)
    spread = (origins - mean_origin).abs().max(0).values.norm() * radius_fraction + 1e-6
    t = 2 * math.pi * rotations * torch.arange(frames, dtype=torch.float64) / frames
    eye = mean_origin + spread * (torch.cos(t)[:, None] * right + torch.sin(t)[:, None] * down)
    target = center.expand_as(eye)
    return _with_defaults(look_at(eye, target, up), cameras, fov_y_degrees, width, height, fps)


def interpolate_keyframes(cam_to_world: Tensor, fov_y_degrees: Tensor, frames: int, width: int = 640,
                          height: int = 480, fps: float = 30.0, loop: bool = False) -> CameraPath:
    """A smooth path through keyframes `cam_to_world [K, 4, 4]` with `fov_y_degrees [K]`.

    Positions, rotations (as quaternions in one hemisphere, renormalised) and fields of view follow
    uniform Catmull-Rom splines, so the path passes through every keyframe with a continuous
    velocity; each segment between keyframes gets the same share of the frames.
    """
    Kf = cam_to_world.shape[0]
    if Kf < 2:
        raise SpatialError(f"a camera path needs at least two keyframes; got {Kf}")
    if frames < 2:
        raise SpatialError(f"a camera path needs at least two frames; got {frames}")
    c2w = cam_to_world.double()
    quats = rotmat_to_quat(c2w[:, :3, :3])
    for i in range(1, Kf):  # keep neighbours in the same hemisphere so the spline takes the short way
        if (quats[i] @ quats[i - 1]) < 0:
            quats[i] = -quats[i]
    values = torch.cat([c2w[:, :3, 3], quats, fov_y_degrees.double()[:, None]], -1)  # [K, 8]
    segments = Kf if loop else Kf - 1
    s = torch.linspace(0, segments, frames + 1 if loop else frames, dtype=torch.float64)[: frames]
    out = _catmull_rom(values, s, loop)
    pose = torch.eye(4, dtype=torch.float64).repeat(frames, 1, 1)
    pose[:, :3, :3] = quat_to_rotmat(out[:, 3:7])
    pose[:, :3, 3] = out[:, :3]
    keys = [{"cam_to_world": c2w[i].tolist(), "fov_y_degrees": float(fov_y_degrees[i])} for i in range(Kf)]
    return CameraPath(pose, out[:, 7], width, height, fps, keys)


def _catmull_rom(values: Tensor, s: Tensor, loop: bool) -> Tensor:
    """Uniform Catmull-Rom through `values [K, D]` at parameters `s [F]` in [0, segments]."""
    K = values.shape[0]
    i = s.floor().long().clamp(max=(K if loop else K - 1) - 1)
    t = (s - i)[:, None]
    idx = torch.stack([i - 1, i, i + 1, i + 2], -1)
    idx = idx % K if loop else idx.clamp(0, K - 1)
    p0, p1, p2, p3 = (values[idx[:, j]] for j in range(4))
    if not loop:  # reflect the missing neighbour at the ends, so the ends have a sensible tangent
        p0 = torch.where((i == 0)[:, None], 2 * p1 - p2, p0)
        p3 = torch.where((i + 1 == K - 1)[:, None], 2 * p2 - p1, p3)
    t2, t3 = t * t, t * t * t
    return 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (3 * p1 - p0 + p3 - 3 * p2) * t3)


def _with_defaults(c2w: Tensor, cameras: Cameras, fov_y_degrees, width, height, fps) -> CameraPath:
    width = int(width or cameras.width[0])
    height = int(height or cameras.height[0])
    if fov_y_degrees is None:
        fov_y_degrees = math.degrees(float(cameras.fov_y[0]))
    return CameraPath(c2w, torch.full((c2w.shape[0],), float(fov_y_degrees), dtype=torch.float64), width, height, fps)


# ---- JSON -------------------------------------------------------------------------------------
def save_camera_path(path: CameraPath, file: Path) -> None:
    """Write nerfstudio's camera-path JSON (OpenGL camera axes, row-major 4x4, vertical fov in degrees)."""
    gl = GL_FROM_CV
    frames = [{"camera_to_world": (path.cam_to_world[i].double().numpy() @ gl).reshape(-1).tolist(),
               "fov": float(path.fov_y_degrees[i]), "aspect": path.width / path.height} for i in range(len(path))]
    keyframes = [{"matrix": (np.asarray(k["cam_to_world"]) @ gl).reshape(-1).tolist(), "fov": k["fov_y_degrees"],
                  "aspect": path.width / path.height} for k in path.keyframes]
    write_json_atomic(Path(file), {
        "camera_type": "perspective", "render_width": path.width, "render_height": path.height,
        "fps": path.fps, "seconds": path.seconds, "camera_path": frames, "keyframes": keyframes,
    })


def load_camera_path(file: Path) -> CameraPath:
    """Read a camera-path JSON written by us, by nerfstudio's viewer, or by hand (see `save_camera_path`)."""
    file = Path(file)
    data = read_json(file)
    entries = data.get("camera_path")
    if not isinstance(entries, list):
        raise file_error(file, "no 'camera_path' list; expected nerfstudio's camera-path JSON")
    if len(entries) < 2:
        raise file_error(file, f"a camera path needs at least two cameras; this one has {len(entries)}")
    if data.get("camera_type", "perspective") != "perspective":
        raise file_error(file, f"camera_type {data['camera_type']!r} is not supported (only 'perspective')")
    width = number(file, "render_width", data.get("render_width", 640), 1, MAX_IMAGE_SIDE, integer=True)
    height = number(file, "render_height", data.get("render_height", 480), 1, MAX_IMAGE_SIDE, integer=True)
    fps = number(file, "fps", data.get("fps", 30.0), MIN_FPS, MAX_FPS)
    poses = [_matrix(file, f"camera_path[{i}]", entry, "camera_to_world") for i, entry in enumerate(entries)]
    fovs = [_fov(file, f"camera_path[{i}]", entry) for i, entry in enumerate(entries)]
    keyframes = data.get("keyframes", []) or []
    if not isinstance(keyframes, list):
        raise file_error(file, f"keyframes must be a list, got {keyframes!r:.80}")
    keyframes = [{"cam_to_world": _matrix(file, f"keyframes[{i}]", k, "matrix").tolist(),
                  "fov_y_degrees": _fov(file, f"keyframes[{i}]", k)} for i, k in enumerate(keyframes)]
    return CameraPath(torch.from_numpy(np.stack(poses)), torch.tensor(fovs, dtype=torch.float64),
                      width, height, fps, keyframes)


MIN_FPS, MAX_FPS = 0.1, 1000.0  # frames a second a video player shows
MIN_FOV = 0.01  # degrees: narrower shows a single splat


def _matrix(file: Path, where: str, entry, key: str) -> np.ndarray:
    """An entry's OpenGL 4x4 (16 numbers, row-major) as an OpenCV cam_to_world; a rigid pose or an error."""
    try:
        T = np.asarray(entry[key], np.float64).reshape(4, 4)
    except (KeyError, TypeError, ValueError, IndexError):
        raise file_error(file, f"{where} needs a 16-number {key!r}") from None
    if not np.isfinite(T).all():
        raise file_error(file, f"{where}: {key} holds a non-finite number")
    if np.abs(T[:3, 3]).max() > MAX_COORDINATE:
        raise file_error(file, f"{where}: the camera is {np.abs(T[:3, 3]).max():.3g} scene units from the origin, "
                               f"beyond the {MAX_COORDINATE:g} a world spans")
    check_rigid(file, where, T)
    return T @ GL_FROM_CV


def _fov(file: Path, where: str, entry) -> float:
    if not isinstance(entry, dict) or "fov" not in entry:
        raise file_error(file, f"{where} needs a 'fov' (vertical field of view in degrees)")
    return number(file, f"{where}: fov", entry["fov"], MIN_FOV, 179.9)
