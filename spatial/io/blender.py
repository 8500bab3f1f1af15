"""The Blender-synthetic NeRF layout: `transforms_{train,val,test}.json` with `camera_angle_x`.

Images are RGBA; the scene's `background` is the colour they are composited on (white by default,
as in the NeRF and 3DGS papers). The validation split is ignored, as those papers do. A
`points3d.ply` beside the json files, as the original 3DGS code writes it, gives the sparse points.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from spatial.cameras import Cameras
from spatial.distortion import CameraModel
from spatial.errors import file_error
from spatial.images import find_image, image_size
from spatial.io.json_util import check_intrinsics, pose_matrix, read_json, text
from spatial.io.paths import check_inside, inside
from spatial.io.points_ply import read_points_ply
from spatial.scene import Scene


def load_blender(folder: Path, background: tuple[float, float, float] | None = None) -> Scene:
    folder = Path(folder).resolve()
    paths, c2w, Ks, sizes, split_ids = [], [], [], [], {"train": [], "test": []}
    for split in ("train", "test"):
        file = folder / f"transforms_{split}.json"
        if not file.is_file():
            if split == "train":
                raise file_error(file, "not found (a Blender scene needs transforms_train.json)")
            continue
        meta = read_json(file)
        angle = meta.get("camera_angle_x")
        if not isinstance(angle, (int, float)) or isinstance(angle, bool) or not 0 < angle < math.pi:
            raise file_error(file, "camera_angle_x must be a number of radians between 0 and pi")
        frames = meta.get("frames")
        if not isinstance(frames, list) or not frames:
            raise file_error(file, "no frames: expected a non-empty list under 'frames'")
        for i, frame in enumerate(frames):
            if not isinstance(frame, dict) or "file_path" not in frame:
                raise file_error(file, f"frame {i} has no file_path")
            # Kept as written (symlinks not followed), so an image's name is its path under the folder.
            name = text(file, f"frame {i}: file_path", frame["file_path"])
            image = find_image(inside(folder, name, file, f"frame {i}: file_path"))
            check_inside(folder, image, file, f"frame {i}: image {image.name!r}")
            w, h = image_size(image)
            f = 0.5 * w / math.tan(0.5 * angle)
            check_intrinsics(file, f"frame {i}", f, f, w / 2, h / 2, w, h)
            split_ids[split].append(len(paths))
            paths.append(image)
            c2w.append(pose_matrix(file, frame, i))
            Ks.append(np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]]))
            sizes.append((w, h))
    cameras = Cameras(
        torch.from_numpy(np.stack(c2w)).float(), torch.from_numpy(np.stack(Ks)).float(),
        torch.tensor([s[0] for s in sizes]), torch.tensor([s[1] for s in sizes]), CameraModel.PINHOLE,
    )
    points, colors = torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.uint8)
    if (folder / "points3d.ply").is_file():
        points, colors = read_points_ply(folder / "points3d.ply")
    return Scene(
        cameras, paths, points, colors,
        split_ids["train"], split_ids["test"], root=folder, image_root=folder,
        background=background, source_format="blender",
    )


# ---- the layout's entry in spatial.io.SCENE_LAYOUTS -------------------------------------------
def detect(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "transforms_train.json").is_file()


def load(path: Path, test_every: int) -> Scene:  # the files name the split, so test_every is not used
    return load_blender(path)
