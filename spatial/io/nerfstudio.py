"""nerfstudio / instant-ngp `transforms.json`: cameras as OpenGL cam_to_world matrices.

Intrinsics are read per frame where a frame has them and from the top level otherwise, so both
the shared-intrinsics files of `ns-process-data` and the per-frame files of other tools load.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from spatial.cameras import Cameras
from spatial.distortion import CameraModel
from spatial.errors import SpatialError, file_error
from spatial.files import write_json_atomic
from spatial.images import find_image, image_size
from spatial.io.json_util import (
    MAX_IMAGE_SIDE,
    check_intrinsics,
    check_rigid,
    gl_matrix,
    number,
    pose_matrix,
    read_json,
    text,
)
from spatial.io.paths import check_inside, inside
from spatial.io.points_ply import read_points_ply, write_points_ply
from spatial.scene import Scene, every_nth_split
from spatial.transforms import apply_to_cam_to_world, apply_to_points

# what each number must be: (lowest, highest, lowest excluded, whole number)
_NUMBERS = {"fl_x": (0, None, True, False), "fl_y": (0, None, True, False), "cx": (None, None, False, False),
            "cy": (None, None, False, False), "w": (1, MAX_IMAGE_SIDE, False, True),
            "h": (1, MAX_IMAGE_SIDE, False, True), "camera_angle_x": (0, math.pi, True, False),
            "camera_angle_y": (0, math.pi, True, False),
            **{k: (-100, 100, False, False) for k in ("k1", "k2", "k3", "k4", "p1", "p2")}}


def _intrinsics(path: Path, meta: dict, frame: dict, index: int, image: Path) -> tuple:
    def get(key: str, default=None):
        value = frame.get(key, meta.get(key))
        value = default if value is None else value  # null is absent, as nerfstudio's own writers mean it
        if key in _NUMBERS and value is not None:
            lo, hi, lo_open, integer = _NUMBERS[key]
            value = number(path, f"frame {index}: {key}", value, lo, hi, integer, lo_open)
        return value

    w, h = get("w"), get("h")
    if w is None or h is None:
        w, h = image_size(image)
    fx, fy = get("fl_x"), get("fl_y")
    if fx is None:
        if get("camera_angle_x") is None:
            raise file_error(path, f"frame {index}: no focal length (fl_x or camera_angle_x)")
        fx = 0.5 * w / math.tan(0.5 * get("camera_angle_x"))
    if fy is None:
        fy = 0.5 * h / math.tan(0.5 * get("camera_angle_y")) if get("camera_angle_y") is not None else fx
    cx, cy = get("cx", w / 2), get("cy", h / 2)
    model_name = get("camera_model", "OPENCV")
    if not isinstance(model_name, str):
        raise file_error(path, f"frame {index}: camera_model must be a name such as OPENCV, got {model_name!r}")
    if model_name in ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
        if get("k3", 0) or get("k4", 0):
            raise file_error(path, f"frame {index}: k3/k4 distortion needs FULL_OPENCV, which spatial does not "
                                   "support; undistort the images first")
        model, dist = CameraModel.OPENCV, [get("k1", 0), get("k2", 0), get("p1", 0), get("p2", 0)]
    elif model_name == "OPENCV_FISHEYE":
        model, dist = CameraModel.OPENCV_FISHEYE, [get("k1", 0), get("k2", 0), get("k3", 0), get("k4", 0)]
    else:
        raise file_error(path, f"frame {index}: camera_model {model_name!r} is not supported "
                               "(use OPENCV, OPENCV_FISHEYE or PINHOLE)")
    check_intrinsics(path, f"frame {index}", fx, fy, cx, cy, w, h)
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)
    return model, K, np.array(dist, np.float64), int(w), int(h)


def load_transforms(path: Path, test_every: int = 8) -> Scene:
    """A `transforms.json` file, or a folder holding one."""
    path = Path(path).resolve()
    file = path / "transforms.json" if path.is_dir() else path
    meta = read_json(file)
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise file_error(file, "no frames: expected a non-empty list under 'frames'")
    root = file.parent
    paths, c2w, Ks, dists, widths, heights, models = [], [], [], [], [], [], []
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict) or "file_path" not in frame:
            raise file_error(file, f"frame {i} has no file_path")
        image = find_image(inside(root, text(file, f"frame {i}: file_path", frame["file_path"]), file,
                                  f"frame {i}: file_path"))
        check_inside(root, image, file, f"frame {i}: image {image.name!r}")
        model, K, dist, w, h = _intrinsics(file, meta, frame, i, image)
        paths.append(image)
        c2w.append(pose_matrix(file, frame, i))
        Ks.append(K)
        dists.append(dist)
        widths.append(w)
        heights.append(h)
        models.append(model)
    if len(set(models)) > 1:
        raise file_error(file, "frames mix fisheye and perspective camera models")
    order = sorted(range(len(paths)), key=lambda i: paths[i].as_posix())
    source_from_file = _source_from_file(file, meta)  # [4, 4] float64
    c2w = apply_to_cam_to_world(source_from_file, torch.from_numpy(np.stack(c2w)[order]))
    cameras = Cameras(
        c2w.float(), torch.from_numpy(np.stack(Ks)[order]).float(),
        torch.tensor(widths)[order], torch.tensor(heights)[order], models[0],
        torch.from_numpy(np.stack(dists)[order]).float(),
    )
    paths = [paths[i] for i in order]
    train, test = _split(file, meta, paths, root, test_every)
    points, colors = torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.uint8)
    if meta.get("ply_file_path"):
        points, colors = read_points_ply(inside(root, text(file, "ply_file_path", meta["ply_file_path"]), file,
                                                "ply_file_path"))
        points = apply_to_points(source_from_file, points.double()).float()
    metadata = {k: meta[k] for k in ("aabb_scale",) if k in meta}
    # Names relative to the images' common folder, so `images/a.png` is cached as `images_2/a.png`.
    image_root = Path(os.path.commonpath([p.parent for p in paths]))
    return Scene(cameras, paths, points, colors, train, test, root=root, image_root=image_root,
                 source_format="nerfstudio", metadata=metadata, notes=_unused_extras(file, frames))


def _source_from_file(file: Path, meta: dict) -> torch.Tensor:
    """The similarity `[4, 4]` (float64) from the file's coordinates back to those of the reconstruction it came
    from. nerfstudio's converters turn COLMAP's world (`applied_transform`, a rigid 3x4, and `applied_scale`) and
    record it; its own parser folds the same two into `dataparser_transform` so that exports land in the original
    frame. Undoing them here gives the cameras and points of the COLMAP model itself."""
    T = np.eye(4)
    if "applied_transform" in meta:
        try:
            A = np.asarray(meta["applied_transform"], np.float64)
        except (TypeError, ValueError):
            raise file_error(file, "applied_transform is not a matrix of numbers") from None
        if A.shape == (3, 4):
            A = np.vstack([A, [0, 0, 0, 1]])
        if A.shape != (4, 4) or not np.isfinite(A).all() or not np.allclose(A[3], [0, 0, 0, 1]):
            raise file_error(file, "applied_transform must be a finite 3x4 matrix")
        check_rigid(file, "applied_transform", A)
        T = np.linalg.inv(A)
    if "applied_scale" in meta:
        scale = number(file, "applied_scale", meta["applied_scale"], 1e-6, 1e6)
        T = T @ np.diag([1 / scale, 1 / scale, 1 / scale, 1])
    return torch.from_numpy(T)


def _unused_extras(file: Path, frames: list[dict]) -> list[str]:
    """What the frames list that spatial reads past: nerfstudio's masks and depth maps."""
    notes = []
    for key, what in (("mask_path", "masks"), ("depth_file_path", "depth maps")):
        count = sum(key in frame for frame in frames)
        if count:
            notes.append(f"{file.name} lists {what} ({key}) for {count} of {len(frames)} images; spatial reads "
                         "the cameras and trains on every pixel without them")
    return notes


def _split(file: Path, meta: dict, paths: list[Path], root: Path, test_every: int) -> tuple[list[int], list[int]]:
    """The split named in the file (`train_filenames`/`test_filenames`), else every n-th image held out."""
    if "train_filenames" not in meta:
        return every_nth_split(len(paths), test_every)
    index = {p: i for i, p in enumerate(paths)}

    def ids(key: str) -> list[int]:
        names = meta.get(key, [])
        if not isinstance(names, list):
            raise file_error(file, f"{key} must be a list of image names, got {names!r}")
        out = []
        for name in names:
            text(file, f"{key} entry", name)
            image = find_image(inside(root, name, file, f"{key} entry"))
            if image not in index:
                raise file_error(file, f"{key} lists {name!r}, which is not among the frames")
            out.append(index[image])
        return sorted(out)

    return ids("train_filenames"), ids("test_filenames")


def write_transforms(scene: Scene, file: Path) -> None:
    """Write `transforms.json` (and `sparse_pc.ply` when the scene has points) beside the images."""
    cams, root = scene.cameras, file.parent
    model = "OPENCV_FISHEYE" if cams.model == CameraModel.OPENCV_FISHEYE else "OPENCV"
    dist_keys = ("k1", "k2", "k3", "k4") if model == "OPENCV_FISHEYE" else ("k1", "k2", "p1", "p2")

    def intrinsics(i: int) -> dict:
        K = cams.K[i].double()
        out = {"fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2]),
               "w": int(cams.width[i]), "h": int(cams.height[i])}
        out.update({k: float(v) for k, v in zip(dist_keys, cams.dist[i].double())})
        return out

    per_frame = [intrinsics(i) for i in range(len(cams))]
    shared = all(p == per_frame[0] for p in per_frame)
    names = [_relative(p, root) for p in scene.image_paths]
    meta: dict = {"camera_model": model, **(per_frame[0] if shared else {})}
    meta["frames"] = [
        {"file_path": name, "transform_matrix": gl_matrix(cams.cam_to_world[i].double().numpy()),
         **({} if shared else per_frame[i])}
        for i, name in enumerate(names)
    ]
    meta["train_filenames"] = [names[i] for i in scene.train_ids]
    meta["test_filenames"] = [names[i] for i in scene.test_ids]
    # nerfstudio's parser, once any split list is present, wants one for every split its trainer asks
    # for, `val` included; the held-out views serve as both (a scene has no separate validation split)
    meta["val_filenames"] = meta["test_filenames"]
    meta.update(scene.metadata)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if scene.points.shape[0]:
            write_points_ply(root / "sparse_pc.ply", scene.points, scene.point_colors)
            meta["ply_file_path"] = "sparse_pc.ply"
        write_json_atomic(file, meta)
    except OSError as e:
        raise SpatialError(f"{file}: cannot write ({e.strerror})") from None


def _relative(path: Path, root: Path) -> str:
    """`path` as the file names it: relative to `root` when it lies there as written (links kept, since the reader
    keeps names inside the folder), else absolute."""
    path, root = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


# ---- the layout's entry in spatial.io.SCENE_LAYOUTS -------------------------------------------
def detect(path: Path) -> bool:
    path = Path(path)
    return (path / "transforms.json").is_file() if path.is_dir() else path.suffix == ".json"


def load(path: Path, test_every: int) -> Scene:
    return load_transforms(path, test_every)


def write(scene: Scene, folder: Path) -> None:
    write_transforms(scene, Path(folder) / "transforms.json")
